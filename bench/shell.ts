/**
 * Keystroke echo latency: `plexus shell n2 -- cat` (from n1's CLI through n1's agent to n2 over
 * the mesh) against `ssh -tt` to a private sshd on loopback running `cat`, in the same run. Each
 * round types KEYS single characters into each, one at a time, and times each echo; rounds
 * alternate plexus and ssh (ABBA), and the bench prints per-tool p50 and p99 over all keys, the
 * median and spread of the per-round p50s, and the client's CPU seconds per 1000 keys.
 *
 *   node bench/shell.ts [ROUNDS=6] [KEYS=200]
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pty from 'node-pty';
import { PLEXUS, startCluster } from '../test/helpers/cluster.ts';
import { privateSshd } from './private-sshd.ts';

const ROUNDS = Number(process.argv[2] ?? 6);
const KEYS = Number(process.argv[3] ?? 200);

/** CPU seconds (user + system) of a process so far, from /proc. */
function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Types KEYS characters into a fresh `file args` on a PTY; returns each echo's ms and CPU s. */
async function typeInto(file: string, args: string[]): Promise<{ ms: number[]; cpu: number }> {
  const term = pty.spawn(file, args, { cols: 80, rows: 24, env: process.env as Record<string, string> });
  let seen = '';
  let waiting: ((s: string) => void) | undefined;
  term.onData((d) => {
    seen += d;
    waiting?.(seen);
  });
  const waitFor = (pred: (s: string) => boolean, ms = 30_000) =>
    new Promise<void>((resolve, reject) => {
      if (pred(seen)) return resolve();
      const t = setTimeout(
        () => reject(new Error(`no echo from ${file}: ${JSON.stringify(seen.slice(-200))}`)),
        ms,
      );
      waiting = (s) => {
        if (pred(s)) {
          clearTimeout(t);
          waiting = undefined;
          resolve();
        }
      };
    });
  // Ready once a probe comes back.
  term.write('ready\r');
  await waitFor((s) => /ready\r?\n.*ready/s.test(s));
  const cpu0 = cpuOf(term.pid);
  const ms: number[] = [];
  for (let i = 0; i < KEYS; i++) {
    const ch = String.fromCharCode(97 + (i % 26));
    const before = seen.length;
    const t0 = performance.now();
    term.write(ch);
    await waitFor((s) => s.length > before && s.slice(before).includes(ch));
    ms.push(performance.now() - t0);
  }
  const cpu = cpuOf(term.pid) - cpu0;
  term.write('\x04\x04');
  await new Promise<void>((r) => {
    term.onExit(() => r());
    setTimeout(() => {
      term.kill('SIGKILL');
      r();
    }, 5_000);
  });
  return { ms, cpu };
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-bench-shell-'));
  const cluster = await startCluster(2);
  const sshd = await privateSshd(dir);
  try {
    const plexusCmd = [PLEXUS, ['--data-dir', cluster.nodes[0].dataDir, 'shell', 'n2', '--', 'cat']] as const;
    const sshCmd = [
      'ssh',
      [
        '-tt',
        '-p',
        String(sshd.port),
        '-i',
        sshd.key,
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'LogLevel=ERROR',
        `${process.env.USER ?? 'root'}@127.0.0.1`,
        'cat',
      ],
    ] as const;
    const all: Record<string, { ms: number[]; p50s: number[]; cpu: number }> = {
      plexus: { ms: [], p50s: [], cpu: 0 },
      ssh: { ms: [], p50s: [], cpu: 0 },
    };
    await typeInto(plexusCmd[0], [...plexusCmd[1]]); // warm the compile cache and the user
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? (['plexus', 'ssh'] as const) : (['ssh', 'plexus'] as const);
      for (const name of order) {
        const [file, args] = name === 'plexus' ? plexusCmd : sshCmd;
        const { ms, cpu } = await typeInto(file, [...args]);
        all[name].ms.push(...ms);
        all[name].p50s.push(pct(ms, 50));
        all[name].cpu += cpu;
      }
    }
    console.log(`== keystroke echo, ${ROUNDS} rounds x ${KEYS} keys, alternating (ABBA) ==`);
    for (const [name, a] of Object.entries(all)) {
      const p50s = [...a.p50s].sort((x, y) => x - y);
      console.log(
        `${name.padEnd(7)} p50 ${pct(a.ms, 50).toFixed(2)} ms  p99 ${pct(a.ms, 99).toFixed(2)} ms  ` +
          `round p50s median ${pct(p50s, 50).toFixed(2)} ms (min ${p50s[0].toFixed(2)}, max ${p50s.at(-1)!.toFixed(2)})  ` +
          `client CPU ${((a.cpu / (ROUNDS * KEYS)) * 1000).toFixed(3)} s per 1000 keys`,
      );
    }
    console.log(`ratio p50 plexus/ssh ${(pct(all.plexus.ms, 50) / pct(all.ssh.ms, 50)).toFixed(2)}x`);
  } finally {
    sshd.stop();
    await cluster.stop();
  }
}

await main();
