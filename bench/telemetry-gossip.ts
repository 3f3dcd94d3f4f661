/**
 * Telemetry gossip at fleet scale, with every agent a separate `bin/plexus agent` process on
 * loopback (issue 4, Measure):
 *
 * - convergence: delay from a record's publish at its node to its receipt at every other node,
 *   p50 and p99 over every receipt in a measurement window (target: p99 ≤ 500 ms at 50 nodes);
 *   read from each agent's `plexus_telemetry_delivery_delay_seconds` histogram (one clock: same
 *   host), percentiles interpolated inside buckets, plus the share of records delivered;
 * - idle cost: per-agent CPU (from /proc/PID/stat) and gossip bytes per second (libp2p's
 *   per-protocol byte counters for /meshsub) over the same window (target: < 2 % CPU at 25).
 *
 *   node bench/telemetry-gossip.ts [nodes=10] [windowS=30]
 *
 * Agents are started one after another (each waits for the previous to answer), so that a
 * 2-core machine is not asked to boot 50 Node processes at once. NODE_OPTIONS is passed through
 * (for example --max-semi-space-size=1 to trim each agent's young generation).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeNode, plexus, type TestNode, waitFor } from '../test/helpers/cluster.ts';

const N = Number(process.argv[2] ?? 10);
const WINDOW_S = Number(process.argv[3] ?? 30);
const INTERVAL_S = 5;
/** How long to wait for every agent to see every other online before measuring anyway. */
const CONVERGE_S = Number(process.env.BENCH_CONVERGE_S ?? 180);
const CLK_TCK = 100;
/** /metrics is served only with api.metricsToken set (issue 12). */
const METRICS_TOKEN = 'bench-metrics-token-0123456789';
const env = {
  PLEXUS_TELEMETRY__INTERVAL_S: String(INTERVAL_S),
  PLEXUS_LOG__LEVEL: 'warn',
  PLEXUS_API__METRICS_TOKEN: METRICS_TOKEN,
};

const log = (msg: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

const root = mkdtempSync(join(tmpdir(), 'plexus-bench-gossip-'));
const nodes: TestNode[] = [];
try {
  log(`starting ${N} agents (interval ${INTERVAL_S} s) under ${root}`);
  const first = await makeNode(root, 'b1', { env });
  const init = await plexus([
    'init',
    '--name',
    first.name,
    '--data-dir',
    first.dataDir,
    '--listen',
    `/ip4/127.0.0.1/tcp/${first.meshPort}`,
    '--api',
    `127.0.0.1:${first.apiPort}`,
    '--socks',
    'off',
  ]);
  if (init.code !== 0) throw new Error(`init: ${init.stderr}`);
  await first.start();
  nodes.push(first);
  const tok = await first.run(['token', 'create', '--ttl', '2h', '--uses', String(N)]);
  if (tok.code !== 0) throw new Error(`token: ${tok.stderr}`);
  const token = tok.stdout.trim();
  const t0 = Date.now();
  for (let i = 2; i <= N; i++) {
    // BENCH_PROFILE_DIR: the last agent runs with --cpu-prof, to see where idle CPU goes.
    const prof = i === N && process.env.BENCH_PROFILE_DIR;
    const nodeEnv = prof
      ? { ...env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${prof}` }
      : env;
    const node = await makeNode(root, `b${i}`, { env: nodeEnv });
    // A join on a loaded 2-core host can time out in the handshake: it writes nothing until it
    // is admitted, so trying again is safe.
    const join = () =>
      plexus([
        'join',
        token,
        '--name',
        node.name,
        '--data-dir',
        node.dataDir,
        '--listen',
        `/ip4/127.0.0.1/tcp/${node.meshPort}`,
        '--api',
        `127.0.0.1:${node.apiPort}`,
        '--socks',
        'off',
      ]);
    let r = await join();
    for (let attempt = 1; r.code !== 0 && attempt < 4; attempt++) {
      log(`join ${node.name} failed (${r.stderr.trim().slice(0, 120)}); retrying`);
      await new Promise((res) => setTimeout(res, 3000));
      r = await join();
    }
    if (r.code !== 0) throw new Error(`join ${node.name}: ${r.stderr}`);
    nodes.push(node); // before start, so that `finally` kills it whatever happens
    await startPatiently(node);
    if (i % 10 === 0) log(`${i} agents up`);
  }
  log(`all ${N} agents started in ${((Date.now() - t0) / 1000).toFixed(0)} s; waiting for full convergence`);
  // Bounded: a mesh that does not converge is itself the finding, measured and reported as is.
  const convergeBy = Date.now() + CONVERGE_S * 1000;
  let online: number[] = [];
  for (;;) {
    online = await Promise.all(nodes.map(async (n) => (await scrape(n).catch(() => ({ online: 0 }))).online));
    if (Math.min(...online) >= N - 1 || Date.now() > convergeBy) break;
    await new Promise((r) => setTimeout(r, 2000));
  }
  const converged = Math.min(...online) >= N - 1;
  log(
    converged
      ? `converged after ${((Date.now() - t0) / 1000).toFixed(0)} s; settling ${2 * INTERVAL_S} s`
      : `NOT converged after ${CONVERGE_S} s: peers online per agent min ${Math.min(...online)} mean ${mean(online).toFixed(1)} of ${N - 1}; measuring anyway`,
  );
  await new Promise((r) => setTimeout(r, 2 * INTERVAL_S * 1000));

  const before = await Promise.all(nodes.map(snapshot));
  const w0 = Date.now();
  await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
  const after = await Promise.all(nodes.map(snapshot));
  const secs = (Date.now() - w0) / 1000;

  // Merge the per-agent delay histograms over the window.
  const buckets = before[0].buckets.map(([le]) => le);
  const counts = buckets.map((_, i) => sum(after.map((a, k) => a.buckets[i][1] - before[k].buckets[i][1])));
  const total = sum(after.map((a, k) => a.count - before[k].count));
  const expected = (N * (N - 1) * secs) / INTERVAL_S;
  const cpu = after.map((a, k) => ((a.cpuTicks - before[k].cpuTicks) / CLK_TCK / secs) * 100);
  const gossipTx = after.map((a, k) => (a.meshsubSent - before[k].meshsubSent) / secs);
  const gossipRx = after.map((a, k) => (a.meshsubRecv - before[k].meshsubRecv) / secs);
  const allTx = after.map((a, k) => (a.globalSent - before[k].globalSent) / secs);
  const rss = after.map((a) => a.rssMb);
  const [l1] = readFileSync('/proc/loadavg', 'utf8').split(' ');

  console.log(`\n== telemetry gossip, ${N} agents, ${secs.toFixed(0)} s window, interval ${INTERVAL_S} s ==`);
  console.log(
    `receipts        ${total} of ${expected.toFixed(0)} expected (${((total / expected) * 100).toFixed(1)} %)`,
  );
  console.log(
    `delay publish→receipt  p50 ${fmtMs(quantile(buckets, counts, 0.5))}  p90 ${fmtMs(quantile(buckets, counts, 0.9))}  p99 ${fmtMs(quantile(buckets, counts, 0.99))}  (bucket-interpolated)`,
  );
  console.log(
    `per-agent CPU   mean ${mean(cpu).toFixed(2)} %  max ${Math.max(...cpu).toFixed(2)} %  (of one core)`,
  );
  console.log(
    `gossip bytes/s  per agent: sent mean ${mean(gossipTx).toFixed(0)}  received mean ${mean(gossipRx).toFixed(0)}  (/meshsub); all libp2p sent mean ${mean(allTx).toFixed(0)}`,
  );
  const onlineNow = await Promise.all(
    nodes.map(async (n) => (await scrape(n).catch(() => ({ online: 0 }))).online),
  );
  console.log(
    `peers online    per agent at the end: min ${Math.min(...onlineNow)} mean ${mean(onlineNow).toFixed(1)} of ${N - 1}`,
  );
  console.log(`agent RSS       mean ${mean(rss).toFixed(0)} MB  max ${Math.max(...rss).toFixed(0)} MB`);
  console.log(
    `host load1      ${l1} on ${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)?.length} cores`,
  );
} finally {
  // SIGTERM first for the profiled agent, so that it writes its profile on the way out.
  if (process.env.BENCH_PROFILE_DIR) await nodes.at(-1)?.stop('SIGTERM');
  await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  rmSync(root, { recursive: true, force: true });
}

/** The helper gives an agent 20 s to answer; a loaded 2-core host may need longer. */
async function startPatiently(node: TestNode): Promise<void> {
  try {
    await node.start();
  } catch (err) {
    if (node.proc?.exitCode !== null) throw err;
    await waitFor(
      async () => (await node.run(['status'])).code === 0,
      120_000,
      `${node.name} to answer`,
      1000,
    );
  }
}

interface Snapshot {
  buckets: [number, number][];
  count: number;
  cpuTicks: number;
  rssMb: number;
  meshsubSent: number;
  meshsubRecv: number;
  globalSent: number;
}

async function scrape(n: TestNode) {
  const res = await fetch(`http://127.0.0.1:${n.apiPort}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { text, online: Number(/^plexus_mesh_peers\{state="online"\} (\d+)/m.exec(text)?.[1] ?? 0) };
}

async function snapshot(n: TestNode): Promise<Snapshot> {
  const { text } = await scrape(n);
  const buckets = [
    ...text.matchAll(/^plexus_telemetry_delivery_delay_seconds_bucket\{le="([^"]+)"\} (\d+)/gm),
  ].map((m) => [m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), Number(m[2])] as [number, number]);
  const bytes = (label: RegExp) =>
    sum(
      [...text.matchAll(/^libp2p_data_transfer_bytes_total\{protocol="([^"]+)"\} (\d+)/gm)]
        .filter((m) => label.test(m[1]))
        .map((m) => Number(m[2])),
    );
  const pid = n.proc?.pid ?? 0;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    buckets,
    count: Number(/^plexus_telemetry_delivery_delay_seconds_count (\d+)/m.exec(text)?.[1] ?? 0),
    cpuTicks: Number(f[11]) + Number(f[12]),
    rssMb: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024,
    meshsubSent: bytes(/^\/meshsub\/.* sent$/),
    meshsubRecv: bytes(/^\/meshsub\/.* received$/),
    globalSent: bytes(/^global sent$/),
  };
}

/** The q-quantile of a cumulative-free bucket histogram, linearly interpolated in its bucket. */
function quantile(les: number[], counts: number[], q: number): number {
  const total = sum(counts.length ? [counts[counts.length - 1]] : [0]);
  // Prometheus buckets are cumulative; `counts` holds the cumulative deltas.
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (let i = 0; i < les.length; i++) {
    if (counts[i] >= rank) {
      if (!Number.isFinite(les[i])) return prevLe;
      const inBucket = counts[i] - prevCount;
      return prevLe + (les[i] - prevLe) * (inBucket ? (rank - prevCount) / inBucket : 0);
    }
    prevLe = les[i];
    prevCount = counts[i];
  }
  return prevLe;
}

function fmtMs(s: number): string {
  return Number.isNaN(s) ? '-' : `${Math.round(s * 1000)} ms`;
}
function sum(v: number[]): number {
  return v.reduce((a, b) => a + b, 0);
}
function mean(v: number[]): number {
  return v.length ? sum(v) / v.length : 0;
}
