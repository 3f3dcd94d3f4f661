/**
 * Two measures of issue 16, each against its ssh baseline in the same run.
 *
 * Keystroke echo latency: `plexus shell n2 -- cat` (from n1's CLI through n1's agent to n2 over
 * the mesh) against `ssh -tt` to a private sshd on loopback running `cat`, in the same run. Each
 * round types KEYS single characters into each, one at a time, and times each echo; rounds
 * alternate plexus and ssh (ABBA), and the bench prints per-tool p50 and p99 over all keys, the
 * median and spread of the per-round p50s, and the client's CPU seconds per 1000 keys.
 *
 * File copy: `plexus cp FILE n2:/tmp/…` of CP_MIB MiB (from n1's CLI through n1's agent) and
 * back (`plexus cp n2:/tmp/… LOCAL`), against `scp` of the same file to and from the private
 * sshd, ROUNDS alternating runs each: median and spread of MB/s, the ratio of medians per
 * direction, and CPU seconds per GiB (from /proc, user + system) of the client and of the far
 * side (both agents for plexus, sshd with its children for scp). Each copy writes a new file
 * (its destination is removed first: see `destination` below for why).
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

/** CPU seconds (user + system) of the children this process has reaped so far. */
function reapedCpu(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

/**
 * Runs a command to its end; returns wall seconds and the CPU seconds it used, with the children
 * it reaped (scp's ssh): what this process's reaped-children counters gained while it ran (one
 * at a time; the agents and sshd are reaped only at the end). Sampling /proc/PID/stat while it
 * ran instead missed up to a poll interval and read a zombie's counters.
 */
function timedRun(file: string, args: string[]): Promise<{ s: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const cpu0 = reapedCpu();
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${file} exited ${code}`));
      else resolve({ s: (performance.now() - t0) / 1000, cpu: reapedCpu() - cpu0 });
    });
  });
}

/** CPU seconds of a process and of the children it has reaped (the node's `cat`, sshd's sessions). */
function cpuWithChildren(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

/** Waits (at most 5 s) until `pid` has reaped its children: sshd's session ends after scp's. */
async function reaped(pid: number): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim() === '') return;
    await new Promise((r) => setTimeout(r, 20));
  }
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
  // `cpu`: the client's; `far`: the node side's, both agents for plexus (the entry's and the
  // node's, with its `cat` or `tail`), sshd (with its session and `scp -t` / `scp -f`) for scp.
  type Tool = 'plexus up' | 'scp up' | 'plexus down' | 'scp down';
  const runs = Object.fromEntries(
    (['plexus up', 'scp up', 'plexus down', 'scp down'] as const).map((k) => [
      k,
      { mbs: [] as number[], cpu: 0, far: 0 },
    ]),
  ) as Record<Tool, { mbs: number[]; cpu: number; far: number }>;
  const farCpu = (name: Tool) =>
    (name.startsWith('plexus') ? agents : [sshd.pid]).reduce((a, p) => a + cpuWithChildren(p), 0);
  const remote = `${process.env.USER ?? 'root'}@127.0.0.1`;
  const scpArgs = ['-q', '-O', '-P', String(sshd.port), '-i', sshd.key, ...SSH_CLIENT_OPTS];
  // Every timed copy writes a new file: its destination is removed first. scp writes over an
  // existing file in place (and truncates it at the end), into pages the page cache still holds;
  // plexus cp writes a temporary file and renames it (docs/shell.md), so always into new pages.
  // On this kind of machine filling new page-cache pages costs the writer ~2 s of CPU per GiB
  // (`perf record` of the CLI: copy_folio_from_iter_atomic, 39 % of its samples), which let scp
  // win a download it would lose into a new file. A new file is what both tools write when the
  // destination is not there, the usual case.
  const destination: Record<Tool, string> = {
    'plexus up': '/tmp/plexus-bench-cp.bin',
    'scp up': '/tmp/plexus-bench-scp.bin',
    'plexus down': `${dir}/cp-back.bin`,
    'scp down': `${dir}/scp-back.bin`,
  };
  const run: Record<Tool, () => Promise<{ s: number; cpu: number }>> = {
    'plexus up': () =>
      timedRun(PLEXUS, ['--data-dir', dataDir, 'cp', file, `n2:${destination['plexus up']}`]),
    'scp up': () => timedRun('scp', [...scpArgs, file, `${remote}:${destination['scp up']}`]),
    // Back from the file the upload just wrote (the same bytes), into a local file.
    'plexus down': () =>
      timedRun(PLEXUS, [
        '--data-dir',
        dataDir,
        'cp',
        `n2:${destination['plexus up']}`,
        destination['plexus down'],
      ]),
    'scp down': () =>
      timedRun('scp', [...scpArgs, `${remote}:${destination['scp up']}`, destination['scp down']]),
  };
  // One untimed plexus copy first, as bench/tunnel.ts warms every path: the first tunnel to a
  // node may ride the mesh stream while its data connection is set up. (Under a load average of
  // 13-16 that first copy, if large, used to break: the stream carrier lost its pause while the
  // receiving `cat` fell behind; docs/shell.md.)
  const warm = `${dir}/cp-warm.bin`;
  writeFileSync(warm, randomBytes(1 << 20));
  await timedRun(PLEXUS, ['--data-dir', dataDir, 'cp', warm, `n2:${destination['plexus up']}`]);
  for (let r = 0; r < ROUNDS; r++) {
    // Each download reads what its tool's upload of this round wrote; the order alternates.
    const order: Tool[][] = [
      ['plexus up', 'plexus down'],
      ['scp up', 'scp down'],
    ];
    for (const pair of r % 2 === 0 ? order : order.reverse())
      for (const name of pair) {
        rmSync(destination[name], { force: true });
        const far0 = farCpu(name);
        const { s, cpu } = await run[name]();
        if (name.startsWith('scp')) await reaped(sshd.pid);
        runs[name].far += farCpu(name) - far0;
        runs[name].mbs.push((CP_MIB * 1.048576) / s);
        runs[name].cpu += cpu;
      }
  }
  console.log(`\n== copy of ${CP_MIB} MiB to and from n2, ${ROUNDS} runs each, alternating ==`);
  const gib = (ROUNDS * CP_MIB) / 1024;
  for (const [name, a] of Object.entries(runs)) {
    const m = [...a.mbs].sort((x, y) => x - y);
    console.log(
      `${name.padEnd(12)} median ${pct(m, 50).toFixed(1)} MB/s (min ${m[0].toFixed(1)}, max ${m.at(-1)!.toFixed(1)})  ` +
        `client CPU ${(a.cpu / gib).toFixed(2)} s per GiB, ` +
        `${name.startsWith('plexus') ? 'both agents' : 'sshd'} ${(a.far / gib).toFixed(2)} s per GiB`,
    );
  }
  for (const way of ['up', 'down'] as const)
    console.log(
      `ratio plexus/scp ${way.padEnd(4)} ${(pct(runs[`plexus ${way}`].mbs, 50) / pct(runs[`scp ${way}`].mbs, 50)).toFixed(2)}x (target >= 1.0x)`,
    );
  for (const f of [file, destination['plexus down'], destination['scp down'], destination['scp up']])
    rmSync(f, { force: true });
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
