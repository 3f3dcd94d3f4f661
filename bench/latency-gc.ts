/**
 * What V8's young-generation collector does while short tunnels go through a forward: the
 * diagnostic behind the connect + echo p99 of bench/tunnel.ts (issue 14).
 *
 *   node bench/latency-gc.ts [--conns 1000]
 *
 * Runs `--conns` serial connect + 1-byte echo + close through a forward between two agents
 * (n1 → n2 → an echo process), then the same number straight to the echo process, each process
 * under `--trace-gc --trace-gc-nvp`. For each of n1, n2 and the echo process (a plain Node TCP
 * server: the baseline), it prints the scavenges over its connections, how many connections
 * each came after, their pause (median, max), the bytes allocated per connection, the share of
 * what was allocated since the previous scavenge that outlived it, and the share of those that
 * outlived the next one too (promoted to the old generation; medians over the scavenges). What
 * outlives a scavenge is copied, and the copying is most of its pause; a connection's objects
 * should be dead by the next one, ~50 connections later. A connection that meets a
 * scavenge on either agent takes the pause on top of its round trip, so pauses ≥ the p99
 * target that hit more than 1 % of connections decide the p99.
 *
 * The agents get the flags from a preload (trace-gc-preload.mjs) in their environment only
 * (Node takes no --trace-gc in NODE_OPTIONS), so that the CLI calls the bench makes stay
 * parseable. V8 prints its trace with C stdio, which a pipe buffers in blocks: every process
 * runs with coreutils' libstdbuf preloaded (what `stdbuf -oL` does), so that each line arrives
 * when it is printed.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { ROOT, startCluster } from '../test/helpers/cluster.ts';

const { values } = parseArgs({ options: { conns: { type: 'string', default: '1000' } } });
const conns = Number(values.conns);
if (!Number.isInteger(conns) || conns < 100 || conns > 100_000)
  throw new Error('--conns must be an integer from 100 to 100000');

const PEER = join(ROOT, 'test', 'fixtures', 'tcp-peer.ts');
const GC_FLAGS = ['--trace-gc', '--trace-gc-nvp'];
const LIBSTDBUF = '/usr/libexec/coreutils/libstdbuf.so';
if (!existsSync(LIBSTDBUF))
  throw new Error(`needs ${LIBSTDBUF} (Debian's coreutils) to line-buffer the GC trace`);
const lineBuffered = { LD_PRELOAD: LIBSTDBUF, _STDBUF_O: 'L' };

/** One scavenge's figures from its --trace-gc-nvp line. */
interface Scavenge {
  pauseMs: number;
  allocated: number;
  /** Bytes allocated since the previous scavenge that this one copied (they outlived one). */
  survived: number;
  /** Bytes that outlived two scavenges, moved to the old generation by this one. */
  promoted: number;
}

/** The scavenges in `text` (the nvp lines; any other output is ignored). */
function scavenges(text: string): Scavenge[] {
  const field = (line: string, key: string) => Number(new RegExp(` ${key}=([\\d.]+)`).exec(line)?.[1] ?? 0);
  return text
    .split('\n')
    .filter((l) => l.includes(' gc=s '))
    .map((l) => ({
      pauseMs: field(l, 'pause'),
      allocated: field(l, 'allocated'),
      survived: field(l, 'new_space_survived'),
      promoted: field(l, 'promoted'),
    }));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)];
};

function report(name: string, text: string, n: number): void {
  const sc = scavenges(text);
  const allocated = sc.reduce((a, s) => a + s.allocated, 0);
  const survivedShare = median(sc.filter((s) => s.allocated > 0).map((s) => s.survived / s.allocated));
  // Of what the previous scavenge copied, the share this one found still alive.
  const promotedShare = median(
    sc.slice(1).map((s, i) => (sc[i].survived > 0 ? s.promoted / sc[i].survived : 0)),
  );
  console.log(
    `${name.padEnd(16)} ${String(sc.length).padStart(4)} scavenges (one per ${(n / Math.max(1, sc.length)).toFixed(0)} conns)` +
      `  pause p50 ${median(sc.map((s) => s.pauseMs)).toFixed(2)} max ${Math.max(0, ...sc.map((s) => s.pauseMs)).toFixed(2)} ms` +
      `  allocated ${(allocated / n / 1024).toFixed(1)} KiB/conn  outlived one ${(100 * survivedShare).toFixed(0)} %, of those two ${(100 * promotedShare).toFixed(0)} %`,
  );
}

/** Starts the echo process under the GC flags; resolves its port and a reader of its output. */
async function startEcho(): Promise<{ proc: ChildProcess; port: number; output: () => string }> {
  const proc = spawn(process.execPath, [...GC_FLAGS, PEER, 'echo', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...lineBuffered },
  });
  let out = '';
  proc.stdout?.on('data', (d) => {
    out += d;
  });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the echo process printed no port in 10 s')), 10_000);
    const check = () => {
      const m = /^(\d+)$/m.exec(out);
      if (!m) return;
      clearTimeout(t);
      proc.stdout?.off('data', check);
      resolve(Number(m[1]));
    };
    proc.stdout?.on('data', check);
  });
  return { proc, port, output: () => out };
}

const echo = await startEcho();
// The agents' environment only: the bench's CLI calls run without the preload.
const cluster = await startCluster(2, {
  env: {
    ...lineBuffered,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${join(import.meta.dirname, 'trace-gc-preload.mjs')}`,
  },
});
try {
  const [n1, n2] = cluster.nodes;
  await n2.run(['expose', 'echo', String(echo.port)]);
  const f = await n1.json<{ listen: string }>(['forward', 'add', 'echo.n2']);
  const port = Number(f.listen.split(':').pop());
  // Run asynchronously, and a moment given after each run: the processes' output reaches this
  // one through pipes that only this event loop reads.
  const latency = async (p: number) => {
    const { stdout } = await promisify(execFile)(process.execPath, [
      PEER,
      'latency',
      '127.0.0.1',
      String(p),
      String(conns),
    ]);
    await new Promise((r) => setTimeout(r, 500));
    return JSON.parse(stdout) as { p50: number; p99: number };
  };
  // Warm-up: the JIT, the data connection pool, and the agents' start-up collections.
  await latency(port);
  const marks = [n1.output().length, n2.output().length];
  const fwd = await latency(port);
  const echoMark = echo.output().length;
  const raw = await latency(echo.port);
  console.log(
    `== ${conns} serial connect + 1-byte echo (p50 / p99 ms): forward ${fwd.p50.toFixed(3)} / ${fwd.p99.toFixed(3)}, raw ${raw.p50.toFixed(3)} / ${raw.p99.toFixed(3)}`,
  );
  report('n1 (opener)', n1.output().slice(marks[0]), conns);
  report('n2 (server)', n2.output().slice(marks[1]), conns);
  // The echo process served the forward's connections first, then the raw ones: report those.
  report('plain Node echo', echo.output().slice(echoMark), conns);
} finally {
  await cluster.stop();
  echo.proc.kill();
}
