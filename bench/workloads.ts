/**
 * Workload benchmarks (issue 3), each against a baseline measured in the same run:
 *
 * 1. Restart latency: from a crash (SIGKILL of the app) to the new child accepting TCP, median
 *    of 20, through the same process supervisor the agent runs, with its default backoff.
 *    Baseline: a plain spawn of the same app until it accepts TCP (no supervisor).
 *    Target: at most 300 ms.
 * 2. Deploy: a 20 MB bundle from a local URL to a healthy app, against plain `curl | tar xz`
 *    of the same bundle. Target: at most 1.5x.
 *
 * Run: scripts/bench workloads (or node bench/workloads.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { silentLogger } from '../src/logging/index.ts';
import { openStore } from '../src/store/index.ts';
import { canSwitchUsers, ensureAppUser } from '../src/workloads/app-users.ts';
import { createProcessBackend, Workloads, workloadsMigrations } from '../src/workloads/index.ts';
import { tarGzDir } from '../test/helpers/archives.ts';
import { freePort } from '../test/helpers/cluster.ts';

const FIXTURE = resolve(import.meta.dirname, '..', 'test', 'fixtures', 'workloads', 'app');
const root = mkdtempSync(join(tmpdir(), 'plexus-bench-wl-'));
// As root, apps run as users of their own (issue 13), who must pass through to their folders.
chmodSync(root, 0o711);
const SAMPLES = Number(process.env.SAMPLES ?? 20);
const DEPLOY_RUNS = Number(process.env.DEPLOY_RUNS ?? 5);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ms = (n: number) => `${n.toFixed(0)} ms`;
/** min–max of the samples, printed beside each median. */
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;

/** Resolves once something accepts TCP on `port`, polling every 2 ms. */
async function untilAccepting(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing accepted on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Resolves once connections to `port` are refused (the old process is gone). */
async function untilRefused(port: number): Promise<void> {
  for (let i = 0; i < 5000; i++) {
    const open = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (!open) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`port ${port} never closed`);
}

async function restartLatency(): Promise<{ restart: number; spawn: number; spreads: string }> {
  const backend = createProcessBackend({}, { logger: silentLogger() });
  const port = await freePort();
  // As the agent runs it: as the app's own user when the bench runs as root.
  const user = canSwitchUsers() ? await ensureAppUser('bench') : undefined;
  const spec = {
    app: 'bench',
    release: 'r1',
    cwd: FIXTURE,
    cmd: `${process.execPath} server.cjs`,
    env: { PORT: String(port), PATH: process.env.PATH ?? '' },
    restart: 'always' as const,
    logFile: join(root, 'bench.log'),
    appDir: root,
    ...(user ? { user } : {}),
  };
  const restarts: number[] = [];
  const spawns: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    // A fresh launch per sample: each crash is a first crash, as after a healthy stretch.
    const state = await backend.launch(spec);
    await untilAccepting(port);
    const t0 = performance.now();
    process.kill(state.pid!, 'SIGKILL');
    // The old listener is gone once a connection is refused; then time the new one.
    await untilRefused(port);
    await untilAccepting(port);
    restarts.push(performance.now() - t0);
    await backend.halt('bench');
    // Baseline: the same app spawned directly, until it accepts.
    const b0 = performance.now();
    const child = spawn(process.execPath, ['server.cjs'], { cwd: FIXTURE, env: spec.env, stdio: 'ignore' });
    await untilAccepting(port);
    spawns.push(performance.now() - b0);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  await backend.close();
  return {
    restart: median(restarts),
    spawn: median(spawns),
    spreads: `restart ${spread(restarts)} ms, spawn ${spread(spawns)} ms`,
  };
}

async function deployVsCurl(): Promise<{
  deploy: number;
  curl: number;
  staged: number;
  booted: number;
  mb: number;
  spreads: string;
}> {
  const src = join(root, 'bundle-src');
  cpSync(FIXTURE, src, { recursive: true });
  mkdirSync(join(src, 'assets'));
  // 20 MB of incompressible assets, like images and a vendored build.
  for (let i = 0; i < 20; i++) writeFileSync(join(src, 'assets', `blob-${i}.bin`), randomBytes(1024 * 1024));
  const bundle = await tarGzDir(src);
  const file = join(root, 'bundle.tgz');
  writeFileSync(file, bundle);
  // The bundle is served by a separate process, as a real artifact server would be.
  const port = await freePort();
  const server = spawn(
    process.execPath,
    [
      '-e',
      `const fs=require('fs');require('http').createServer((q,s)=>{const st=fs.statSync(${JSON.stringify(file)});s.writeHead(200,{'content-length':st.size});fs.createReadStream(${JSON.stringify(file)}).pipe(s)}).listen(${port},'127.0.0.1')`,
    ],
    { stdio: 'ignore' },
  );
  await untilAccepting(port);
  const url = `http://127.0.0.1:${port}/bundle.tgz`;
  // Plain http is pinned by its sha256 (issue 13); the agent hashes every bundle anyway.
  const sha256 = createHash('sha256').update(bundle).digest('hex');
  const db = openStore(join(root, 'bench.db'), workloadsMigrations);
  const logger = silentLogger();
  const w = new Workloads(
    { appsDir: join(root, 'apps') },
    { db, logger, backend: createProcessBackend({}, { logger }), masterKey: randomBytes(32) },
  );
  await w.start();
  const appPort = await freePort();
  const deploys: number[] = [];
  const staged: number[] = [];
  const booted: number[] = [];
  const curls: number[] = [];
  for (let i = 0; i < DEPLOY_RUNS; i++) {
    const c0 = performance.now();
    const out = join(root, `curl-${i}`);
    mkdirSync(out);
    execFileSync('sh', ['-c', `curl -sf "${url}" | tar xz -C "${out}"`]);
    curls.push(performance.now() - c0);
    rmSync(out, { recursive: true, force: true });
    const d0 = performance.now();
    let startedAt = 0;
    await w.deploy({
      app: 'big',
      source: { kind: 'url', url, sha256 },
      flags: { cmd: `${process.execPath} server.cjs`, port: appPort, health: `http://:${appPort}/health` },
      // 'start' comes once the bundle is downloaded, extracted and checked, before the old release stops.
      onProgress: (p) => {
        if (p.phase === 'start') startedAt = performance.now();
      },
    });
    const done = performance.now();
    deploys.push(done - d0);
    staged.push(startedAt - d0);
    booted.push(done - startedAt);
  }
  await w.stopApp('big');
  await w.stop();
  db.close();
  server.kill();
  return {
    deploy: median(deploys),
    curl: median(curls),
    staged: median(staged),
    booted: median(booted),
    mb: bundle.length / 1048576,
    spreads: `deploy ${spread(deploys)} ms, curl | tar ${spread(curls)} ms`,
  };
}

try {
  const r = await restartLatency();
  console.log(
    `restart latency (crash -> new child accepting TCP, median of ${SAMPLES}): ${ms(r.restart)} ` +
      `[baseline: plain spawn -> accepting ${ms(r.spawn)}; supervisor adds ${ms(r.restart - r.spawn)}] ` +
      `target <= 300 ms: ${r.restart <= 300 ? 'PASS' : 'FAIL'}\n  spread (min–max): ${r.spreads}`,
  );
  const d = await deployVsCurl();
  console.log(
    `deploy ${d.mb.toFixed(1)} MB bundle from a local URL to healthy (median of ${DEPLOY_RUNS}): ${ms(d.deploy)} ` +
      `vs curl | tar xz ${ms(d.curl)}: ratio ${(d.deploy / d.curl).toFixed(2)}x ` +
      `target <= 1.5x: ${d.deploy / d.curl <= 1.5 ? 'PASS' : 'FAIL'}\n` +
      `  of which: download + extract + checks ${ms(d.staged)} ` +
      `(${(d.staged / d.curl).toFixed(2)}x curl | tar), port handover + new release start to healthy ${ms(d.booted)}\n` +
      `  spread (min–max): ${d.spreads}`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
