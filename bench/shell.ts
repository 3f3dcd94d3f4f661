/**
 * Two measures of issue 16, each against its ssh baseline in the same run.
 *
 * Keystroke echo latency: `plexus shell n2 -- cat` (from n1's CLI through n1's agent to n2 over
 * the mesh) against `ssh -tt` to a private sshd on loopback running `cat`, in the same run. Each
 * round types KEYS single characters into each, one at a time, and times each echo; rounds
 * alternate plexus and ssh (ABBA), and the bench prints per-tool p50 and p99 over all keys, the
 * median and spread of the per-round p50s, and the client's CPU seconds per 1000 keys.
 *
 * File copy: `plexus cp FILE n2:/tmp/…` of CP_MIB MiB (from n1's CLI through n1's agent) against
 * `scp` of the same file to the private sshd, ROUNDS alternating runs each: median and spread of
 * MB/s, the ratio of medians, and CPU seconds per GiB (from /proc, user + system) of the client
 * and of the far side (both agents for plexus, sshd with its children for scp).
 *
 *   node bench/shell.ts [ROUNDS=6] [KEYS=200] [CP_MIB=512]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pty from 'node-pty';
import { PLEXUS, startCluster } from '../test/helpers/cluster.ts';
import { privateSshd, SSH_CLIENT_OPTS } from './private-sshd.ts';

const ROUNDS = Number(process.argv[2] ?? 6);
const KEYS = Number(process.argv[3] ?? 200);
const CP_MIB = Number(process.argv[4] ?? 512);

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

/** Runs a command to its end; returns wall seconds and the CPU seconds it used (from /proc). */
function timedRun(file: string, args: string[]): Promise<{ s: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    // CPU of the process and the children it waited for (cutime/cstime), read when it exits.
    let cpu = 0;
    const poll = setInterval(() => {
      try {
        const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
        cpu = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
      } catch {
        // exited
      }
    }, 50);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`${file} exited ${code}`));
      else resolve({ s: (performance.now() - t0) / 1000, cpu });
    });
  });
}

/** CPU seconds of a process and of the children it has reaped (the node's `cat`, sshd's sessions). */
function cpuWithChildren(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

async function copies(
  dataDir: string,
  sshd: { port: number; key: string; pid: number },
  dir: string,
  agents: number[],
): Promise<void> {
  const file = `${dir}/cp-src.bin`;
  const fd = openSync(file, 'w');
  for (let i = 0; i < CP_MIB; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  // `cpu`: the client's; `far`: the receiving side's, both agents for plexus (the entry's and
  // the node's, with its `cat`), sshd (with its session and `scp -t`) for scp.
  const runs: Record<'plexus' | 'scp', { mbs: number[]; cpu: number; far: number }> = {
    plexus: { mbs: [], cpu: 0, far: 0 },
    scp: { mbs: [], cpu: 0, far: 0 },
  };
  const farCpu = (name: 'plexus' | 'scp') =>
    (name === 'plexus' ? agents : [sshd.pid]).reduce((a, p) => a + cpuWithChildren(p), 0);
  const plexusCp = () => timedRun(PLEXUS, ['--data-dir', dataDir, 'cp', file, 'n2:/tmp/plexus-bench-cp.bin']);
  const scp = () =>
    timedRun('scp', [
      '-q',
      '-O',
      '-P',
      String(sshd.port),
      '-i',
      sshd.key,
      ...SSH_CLIENT_OPTS,
      file,
      `${process.env.USER ?? 'root'}@127.0.0.1:/tmp/plexus-bench-scp.bin`,
    ]);
  // One untimed plexus copy first, as bench/tunnel.ts warms every path: the first tunnel to a
  // node may ride the mesh stream while its data connection is set up. (Under a load average of
  // 13-16 that first copy, if large, used to break: the stream carrier lost its pause while the
  // receiving `cat` fell behind; docs/shell.md.)
  const warm = `${dir}/cp-warm.bin`;
  writeFileSync(warm, randomBytes(1 << 20));
  await timedRun(PLEXUS, ['--data-dir', dataDir, 'cp', warm, 'n2:/tmp/plexus-bench-cp.bin']);
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of r % 2 === 0 ? (['plexus', 'scp'] as const) : (['scp', 'plexus'] as const)) {
      const far0 = farCpu(name);
      const { s, cpu } = await (name === 'plexus' ? plexusCp() : scp());
      runs[name].far += farCpu(name) - far0;
      runs[name].mbs.push((CP_MIB * 1.048576) / s);
      runs[name].cpu += cpu;
    }
  }
  console.log(`\n== copy of ${CP_MIB} MiB to n2, ${ROUNDS} runs each, alternating ==`);
  for (const [name, a] of Object.entries(runs)) {
    const m = [...a.mbs].sort((x, y) => x - y);
    console.log(
      `${name.padEnd(7)} median ${pct(m, 50).toFixed(1)} MB/s (min ${m[0].toFixed(1)}, max ${m.at(-1)!.toFixed(1)})  ` +
        `client CPU ${(a.cpu / ((ROUNDS * CP_MIB) / 1024)).toFixed(2)} s per GiB, ` +
        `${name === 'plexus' ? 'both agents' : 'sshd'} ${(a.far / ((ROUNDS * CP_MIB) / 1024)).toFixed(2)} s per GiB`,
    );
  }
  console.log(
    `ratio plexus/scp ${(pct(runs.plexus.mbs, 50) / pct(runs.scp.mbs, 50)).toFixed(2)}x (target >= 1.0x)`,
  );
  rmSync(file, { force: true });
  rmSync('/tmp/plexus-bench-scp.bin', { force: true });
}

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
        ...SSH_CLIENT_OPTS,
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
    const agents = cluster.nodes.map((n) => n.proc?.pid ?? 0);
    await copies(cluster.nodes[0].dataDir, sshd, dir, agents);
  } finally {
    sshd.stop();
    await cluster.stop();
  }
}

await main();
