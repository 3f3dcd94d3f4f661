/**
 * Where a forward's two agents spend their CPU on short tunnels: the diagnostic behind the
 * connect + echo figures of bench/tunnel.ts (issue 14), which follow that CPU on two cores.
 *
 *   node bench/tunnel-cpu.ts [--conns 3000] [--out DIR] [--bundle]
 *
 * Runs `--conns` serial connect + 1-byte echo + close (test/fixtures/tcp-peer.ts `latency`)
 * through a forward between two agents (n1 opens, n2 serves, an echo process behind it), each
 * agent under `node --cpu-prof` at a 0.1 ms interval and from its sources (PLEXUS_NO_BUNDLE=1,
 * so that time is charged to files). The shipped bundle runs the same code in less time (one
 * scope instead of modules); `--bundle` profiles it, with our code and the libraries as one
 * group. Inside the window
 * of the timed connections (bench/cpu-profile.ts), it prints each agent's busy time per
 * connection, split into our code (src/), the libraries, Node's own JavaScript, and what runs
 * below JavaScript: sends (each loopback send carries the kernel's receive path and the
 * reader's wake-up), the serving agent's connect to its target, closes, GC. Then the files of
 * src/ and the functions that spent the most. The profiler adds to every figure (about a
 * fifth, against bench/tunnel.ts's CPU per connection); compare shares, not absolute times.
 * Profiles are kept in `--out` (default: a temporary directory, removed).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster } from '../test/helpers/cluster.ts';
import { type SelfTime, windowSelfTime } from './cpu-profile.ts';
import { runPeer, startPeer } from './tcp-peers.ts';

const { values } = parseArgs({
  options: {
    conns: { type: 'string', default: '3000' },
    out: { type: 'string' },
    bundle: { type: 'boolean' },
  },
});
const conns = Number(values.conns);
if (!Number.isInteger(conns) || conns < 100 || conns > 100_000)
  throw new Error('--conns must be an integer from 100 to 100000');

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const dir = values.out ? resolve(values.out) : mkdtempSync(join(tmpdir(), 'plexus-bench-tunnel-cpu-'));
mkdirSync(dir, { recursive: true });

/** What a leaf frame's self time counts as. */
function groupOf(fn: string): string {
  const [name, where] = [fn.slice(0, fn.lastIndexOf(' ')), fn.slice(fn.lastIndexOf(' ') + 1)];
  // Node's JS functions that make the call into C++ (the profile shows no frame below them).
  if (name === 'internalConnect') return 'below JS: connect';
  if (name === 'onconnection') return 'below JS: accept';
  if (where.startsWith('src/')) return 'our code (src/)';
  if (/\/compile-cache\/agent\/|\/dist\/agent\.mjs/.test(where)) return 'the bundle (our code and libraries)';
  if (where.startsWith('node:')) return "Node's JavaScript (node:*)";
  if (!where.startsWith('(native)')) return 'libraries (node_modules)';
  if (['writeBuffer', 'writev', 'writeUtf8String', 'writeLatin1String'].includes(name))
    return 'below JS: sends';
  if (name === 'connect') return 'below JS: connect';
  if (name === 'close' || name === 'shutdown') return 'below JS: close, shutdown';
  if (name === '(garbage collector)') return 'GC';
  return 'below JS: other';
}

function report(label: string, s: SelfTime): void {
  const per = (ms: number) => `${(ms / conns).toFixed(3)} ms`;
  console.log(`${label}: busy ${per(s.totalMs)} per connection (idle excluded)`);
  const groups = new Map<string, number>();
  for (const [fn, ms] of s.byFunction) groups.set(groupOf(fn), (groups.get(groupOf(fn)) ?? 0) + ms);
  for (const [g, ms] of [...groups].sort((a, b) => b[1] - a[1]))
    console.log(`  ${per(ms).padStart(9)}  ${((100 * ms) / s.totalMs).toFixed(0).padStart(3)} %  ${g}`);
  const files = [...s.byModule].filter(([m]) => m.startsWith('src/')).sort((a, b) => b[1] - a[1]);
  console.log('  our files:');
  for (const [m, ms] of files.slice(0, 10)) console.log(`    ${per(ms).padStart(9)}  ${m}`);
  console.log('  functions:');
  for (const [fn, ms] of [...s.byFunction].sort((a, b) => b[1] - a[1]).slice(0, 15))
    console.log(`    ${per(ms).padStart(9)}  ${fn}`);
}

const { port: echoPort, stop: stopEcho } = await startPeer(['echo', '0']);
const cluster = await startCluster(2, {
  env: {
    ...(values.bundle ? {} : { PLEXUS_NO_BUNDLE: '1' }),
    NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir} --cpu-prof-interval=100`,
  },
});
try {
  const [n1, n2] = cluster.nodes;
  const exposed = await n2.run(['expose', 'echo', String(echoPort)]);
  if (exposed.code !== 0) throw new Error(exposed.stderr);
  const f = await n1.json<{ listen: string }>(['forward', 'add', 'echo.n2']);
  const port = f.listen.split(':').pop() ?? '';
  const latency = (n: number) =>
    runPeer<{ p50: number; p99: number }>(['latency', '127.0.0.1', port, String(n)]);
  // Untimed first: the data connections are pooled and the hot paths compiled.
  await latency(300);
  await new Promise((r) => setTimeout(r, 1000));
  const fromUs = nowUs();
  const lat = await latency(conns);
  const toUs = nowUs();
  const pids = { n1: n1.proc?.pid ?? 0, n2: n2.proc?.pid ?? 0 };
  // SIGTERM lets each agent exit normally, which is when node writes its profile.
  await Promise.all(cluster.nodes.map((n) => n.stop('SIGTERM')));
  console.log(
    `${conns} connect + 1-byte echo through the forward, under the profiler: p50 ${lat.p50.toFixed(3)} ms, p99 ${lat.p99.toFixed(3)} ms`,
  );
  for (const [name, pid] of Object.entries(pids)) {
    const file = readdirSync(dir).find((x) => x.includes(`.${pid}.`) && x.endsWith('.cpuprofile'));
    if (!file) throw new Error(`${name} (pid ${pid}) wrote no profile in ${dir}`);
    report(`${name} (${name === 'n1' ? 'opens' : 'serves'})`, windowSelfTime(join(dir, file), fromUs, toUs));
  }
  if (values.out) console.log(`profiles: ${dir}`);
} finally {
  await cluster.stop();
  stopEcho();
  if (!values.out) rmSync(dir, { recursive: true, force: true });
}
