/**
 * Zero-downtime deploys (issue 18), not a timed test: a load generator keeps about 200 requests/s
 * on an app's declared port while the app goes through 5 deploys and 2 rollbacks; each of RUNS
 * runs (default 5) prints the failed requests, and the p99 latency of requests that started
 * during a switch (from the deploy's start to 1 s after it returned) against those outside any
 * switch (the baseline, same run, same load). Then, with nothing deploying, it measures the
 * declared port (the kernel redirect) against the release's private port directly (alternating
 * which goes first): p50/p99 latency and the agent's CPU time per request, then per GB of bulk
 * downloads. The summary gives the median and the min–max of every figure over the runs, and the
 * agent's CPU seconds per deploy.
 *
 * The workload manager (the agent's side: deploys, the kernel rules) runs in a child process of
 * its own, so the load generator's CPU is not counted as the agent's. As root the whole bench
 * re-runs itself in a fresh network namespace (its nftables table never touches the host's);
 * elsewhere the workload manager takes the fallback, and the bench says so.
 *
 * Run: node bench/deploy-switch.ts            (RUNS=5 RATE=200 MB=64 by default)
 * Against the userspace handover it replaced: bench/compare REV 5 bench/deploy-switch.ts
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger } from '../src/logging/index.ts';
import { openStore } from '../src/store/index.ts';
import { createProcessBackend, Workloads, workloadsMigrations } from '../src/workloads/index.ts';
import { tarGzDir } from '../test/helpers/archives.ts';
import { freePort } from '../test/helpers/cluster.ts';
import { type Sample, startLoad } from '../test/helpers/load.ts';
import { execInFreshNetns, insideNetns } from '../test/helpers/netns-self.ts';
import { killProcessesUnder } from '../test/helpers/processes.ts';

const FIXTURE = resolve(import.meta.dirname, '..', 'test', 'fixtures', 'workloads', 'app');
const RUNS = Number(process.env.RUNS ?? 5);
const RATE = Number(process.env.RATE ?? 200);
/** Requests that start this long after a switch returned still count as "during" it (the drain). */
const AFTER_SWITCH_MS = 1_000;
const OVERHEAD_MS = 3_000;
/** MiB per bulk download, 3 downloads per path and run. */
const MB = Number(process.env.MB ?? 64);

type Op =
  | { op: 'deploy'; version: string }
  | { op: 'rollback' }
  | { op: 'live' }
  | { op: 'cpu' }
  | { op: 'mode' }
  | { op: 'quit' };

// --- the agent's side, in a child process ---------------------------------------------------------

async function agent(root: string, port: number): Promise<void> {
  const db = openStore(join(root, 'plexus.db'), workloadsMigrations);
  const logger = createLogger({ stdout: false }).logger;
  const backend = createProcessBackend({}, { logger });
  const w = new Workloads(
    { appsDir: join(root, 'apps'), drainTimeoutMs: 5_000, redirect: {} },
    { db, logger, backend, masterKey: randomBytes(32) },
  );
  await w.start();
  let first = true;
  process.on('message', async (m: Op & { id: number }) => {
    try {
      let result: unknown = null;
      if (m.op === 'deploy') {
        const dir = join(root, 'src', m.version);
        cpSync(FIXTURE, dir, { recursive: true });
        writeFileSync(join(dir, 'version.txt'), m.version);
        const tgz = await tarGzDir(dir);
        const input = (async function* () {
          yield { chunk: tgz.toString('base64') };
          yield { end: true };
        })();
        const flags = first
          ? { cmd: `${process.execPath} server.cjs`, port, health: `http://:${port}/health` }
          : undefined;
        first = false;
        result = (await w.deploy({ app: 'web', source: { kind: 'upload', input }, flags })).release;
      } else if (m.op === 'rollback') result = (await w.rollback('web')).release;
      else if (m.op === 'live') result = w.upstreams.upstreamOf('web');
      else if (m.op === 'mode') result = w.downtimeDeploys ?? 'kernel redirect';
      else if (m.op === 'cpu') {
        const u = process.cpuUsage();
        result = (u.user + u.system) / 1e6;
      } else {
        await w.removeApp('web').catch(() => {});
        await w.stop();
        db.close();
        process.send!({ id: m.id, ok: true, result }, () => process.exit(0));
        return;
      }
      process.send!({ id: m.id, ok: true, result });
    } catch (err) {
      process.send!({ id: m.id, ok: false, result: (err as { code?: string }).code ?? String(err) });
    }
  });
  process.send!({ ready: true });
}

// --- the bench, in the parent ----------------------------------------------------------------------

function client(child: ChildProcess) {
  let next = 0;
  const waiting = new Map<number, (r: { ok: boolean; result: unknown }) => void>();
  child.on('message', (m: { id?: number; ok: boolean; result: unknown }) => {
    if (m.id !== undefined) waiting.get(m.id)?.(m);
  });
  return <T>(op: Op): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, (r) => (r.ok ? resolve(r.result as T) : reject(new Error(`${op.op}: ${r.result}`))));
      child.send({ ...op, id });
    });
}

const pct = (xs: number[], p: number) => {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const median = (xs: number[]) => pct(xs, 50);
const fmt = (xs: number[], digits = 1) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;

interface RunFigures {
  failed: number;
  requests: number;
  p99During: number;
  p99Outside: number;
  declaredP50: number;
  declaredP99: number;
  directP50: number;
  directP99: number;
  /** Agent CPU µs per request, through the declared port and direct. */
  cpuDeclaredUs: number;
  cpuDirectUs: number;
  /** Agent CPU s per GB downloaded, through the declared port and direct. */
  cpuDeclaredSPerGb: number;
  cpuDirectSPerGb: number;
  /** Agent CPU seconds per deploy or rollback (the switch phase, load included). */
  cpuPerSwitchS: number;
}

async function oneRun(run: number): Promise<RunFigures> {
  const root = mkdtempSync(join(tmpdir(), 'plexus-bench-zd-'));
  chmodSync(root, 0o711);
  const port = await freePort();
  const child = fork(import.meta.filename, ['--agent', root, String(port)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((r) => child.once('message', () => r()));
  const call = client(child);
  try {
    await call({ op: 'deploy', version: 'v0' });
    if (run === 0) console.log(`traffic: ${await call<string>({ op: 'mode' })}`);
    const load = startLoad({ port, rate: RATE, concurrency: 64, maxRequests: 1_000_000, maxMs: 600_000 });
    await new Promise((r) => setTimeout(r, 1_000));
    const windows: [number, number][] = [];
    const cpu0 = await call<number>({ op: 'cpu' });
    const ops: Op[] = ['d', 'd', 'r', 'd', 'd', 'r', 'd'].map((k, i) =>
      k === 'd' ? { op: 'deploy', version: `v${i + 1}` } : { op: 'rollback' },
    );
    for (const op of ops) {
      const t0 = performance.now();
      await call(op);
      windows.push([t0, performance.now() + AFTER_SWITCH_MS]);
      await new Promise((r) => setTimeout(r, 1_500));
    }
    const cpuSwitches = (await call<number>({ op: 'cpu' })) - cpu0;
    const samples = await load.stop();
    const start = samples.length ? Math.min(...samples.map((s) => s.at)) + 1_000 : 0;
    const during = (s: Sample) => windows.some(([a, b]) => s.at >= a && s.at <= b);
    const inWindow = samples.filter(during);
    const outside = samples.filter((s) => !during(s) && s.at >= start);
    // The declared port against the private port directly, alternating which goes first.
    const live = await call<number>({ op: 'live' });
    const measure = async (p: number) => {
      const c0 = await call<number>({ op: 'cpu' });
      const l = startLoad({
        port: p,
        rate: RATE,
        concurrency: 64,
        maxRequests: (RATE * OVERHEAD_MS) / 1000,
        maxMs: OVERHEAD_MS * 2,
      });
      await new Promise((r) => setTimeout(r, OVERHEAD_MS));
      const s = await l.stop();
      const cpu = (await call<number>({ op: 'cpu' })) - c0;
      const c1 = await call<number>({ op: 'cpu' });
      let bytes = 0;
      for (let i = 0; i < 3; i++) bytes += await download(p, MB);
      const bulk = (await call<number>({ op: 'cpu' })) - c1;
      return {
        ms: s.filter((x) => x.ok).map((x) => x.ms),
        cpuUs: (cpu * 1e6) / Math.max(1, s.length),
        cpuSPerGb: bulk / (bytes / 1e9),
      };
    };
    const order = run % 2 ? [live, port] : [port, live];
    const a = await measure(order[0]);
    const b = await measure(order[1]);
    const [direct, declared] = order[0] === live ? [a, b] : [b, a];
    const fig: RunFigures = {
      failed: samples.filter((s) => !s.ok).length,
      requests: samples.length,
      p99During: pct(
        inWindow.filter((s) => s.ok).map((s) => s.ms),
        99,
      ),
      p99Outside: pct(
        outside.filter((s) => s.ok).map((s) => s.ms),
        99,
      ),
      declaredP50: pct(declared.ms, 50),
      declaredP99: pct(declared.ms, 99),
      directP50: pct(direct.ms, 50),
      directP99: pct(direct.ms, 99),
      cpuDeclaredUs: declared.cpuUs,
      cpuDirectUs: direct.cpuUs,
      cpuDeclaredSPerGb: declared.cpuSPerGb,
      cpuDirectSPerGb: direct.cpuSPerGb,
      cpuPerSwitchS: cpuSwitches / ops.length,
    };
    console.log(
      `run ${run + 1}: ${fig.failed} failed of ${fig.requests}; p99 during switches ${fig.p99During.toFixed(1)} ms ` +
        `(${inWindow.length} requests), outside ${fig.p99Outside.toFixed(1)} ms (${outside.length}); ` +
        `declared port p50/p99 ${fig.declaredP50.toFixed(2)}/${fig.declaredP99.toFixed(2)} ms vs direct ` +
        `${fig.directP50.toFixed(2)}/${fig.directP99.toFixed(2)} ms; agent CPU ${fig.cpuDeclaredUs.toFixed(0)} µs/request ` +
        `via the declared port, ${fig.cpuDirectUs.toFixed(0)} direct; ${fig.cpuDeclaredSPerGb.toFixed(3)} s/GB via the ` +
        `declared port, ${fig.cpuDirectSPerGb.toFixed(3)} direct; ${fig.cpuPerSwitchS.toFixed(3)} CPU s per switch`,
    );
    return fig;
  } finally {
    await call({ op: 'quit' }).catch(() => child.kill('SIGKILL'));
    killProcessesUnder(root);
    rmSync(root, { recursive: true, force: true });
  }
}

/** Downloads `mb` MiB from 127.0.0.1:`port`; resolves to the bytes received. */
function download(port: number, mb: number): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: `/bytes?mb=${mb}`, agent: false }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
      });
      res.on('end', () => resolve(n));
      res.on('error', reject);
    }).on('error', reject);
  });
}

async function main(): Promise<void> {
  console.log(
    `deploy-switch: ${RUNS} runs, ${RATE} requests/s, 5 deploys + 2 rollbacks per run, ${MB} MiB downloads (node bench/deploy-switch.ts)`,
  );
  const runs: RunFigures[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await oneRun(i));
  const col = (k: keyof RunFigures) => runs.map((r) => r[k]);
  console.log(`\nmedian (min–max) over ${RUNS} runs:`);
  console.log(`  failed requests per run           ${fmt(col('failed'), 0)} of ${fmt(col('requests'), 0)}`);
  console.log(`  p99 during a switch               ${fmt(col('p99During'))} ms`);
  console.log(`  p99 outside (baseline, same run)  ${fmt(col('p99Outside'))} ms`);
  console.log(
    `  p50 via the declared port / direct  ${fmt(col('declaredP50'), 2)} / ${fmt(col('directP50'), 2)} ms`,
  );
  console.log(
    `  p99 via the declared port / direct  ${fmt(col('declaredP99'), 2)} / ${fmt(col('directP99'), 2)} ms`,
  );
  console.log(
    `  agent CPU per request, declared port  ${fmt(col('cpuDeclaredUs'), 0)} µs (direct: ${fmt(col('cpuDirectUs'), 0)} µs, the agent idle)`,
  );
  console.log(
    `  agent CPU per GB, declared port   ${fmt(col('cpuDeclaredSPerGb'), 3)} s (direct: ${fmt(col('cpuDirectSPerGb'), 3)} s)`,
  );
  console.log(`  agent CPU per deploy or rollback  ${fmt(col('cpuPerSwitchS'), 3)} s (under the load)`);
}

if (process.argv[2] === '--agent') await agent(process.argv[3], Number(process.argv[4]));
else if (process.getuid?.() === 0 && !insideNetns()) {
  // Root: the kernel redirect, in a namespace of the bench's own.
  const r = await execInFreshNetns([process.execPath, import.meta.filename], true);
  process.exitCode = r.code ?? 1;
} else await main();
