/**
 * Idle CPU and RSS of two 5-agent meshes running at the same time, one from another checkout
 * (before) and one from this work tree (after), measured over the same windows so that a shared
 * machine's drift hits both alike (bench/join.ts measures one tree at a time, and its idle figure
 * moved by ±0.2 points between runs on this kind of machine).
 *
 *   node bench/idle.ts --before DIR [--windows 6] [--window-s 20] [--settle-s 60] [--profile OUT]
 *
 * DIR is a bootstrapped checkout of the other revision, e.g. the worktree bench/compare makes
 * (`bench/compare REV 1 …` leaves it at /tmp/plexus-bench-<rev12>). Prints each window's mean
 * per side, then the median, min and max CPU % per agent over every window and agent, and RSS.
 * The windows start --settle-s after both meshes are up: the after mesh starts second, and a
 * young agent still has start-up work going (its first minute as a newcomer, dial-backs that
 * retry every 30 s until members answer), which a 15 s settle charged to the after side only.
 *
 * With --profile, every agent runs under `node --cpu-prof` (profiles in OUT/before, OUT/after)
 * and from its sources (PLEXUS_NO_BUNDLE=1, so that time is charged to files, not to one bundle);
 * after the windows the agents are stopped with SIGTERM, which writes the profiles, and the self
 * time inside the windows is printed per side, by module and by function (bench/cpu-profile.ts).
 * Profiling costs CPU of its own: take the CPU figures from a run without it.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster as startAfter } from '../test/helpers/cluster.ts';
import { emptySelfTime, printSelfTime, windowSelfTime } from './cpu-profile.ts';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    windows: { type: 'string', default: '6' },
    'window-s': { type: 'string', default: '20' },
    'settle-s': { type: 'string', default: '60' },
    profile: { type: 'string' },
  },
});
if (!values.before) throw new Error('usage: node bench/idle.ts --before DIR [--windows N] [--window-s S]');
const windows = Number(values.windows);
const windowS = Number(values['window-s']);
const { startCluster: startBefore } = (await import(
  join(resolve(values.before), 'test', 'helpers', 'cluster.ts')
)) as { startCluster: typeof startAfter };

const ticks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
};
const rssMb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
/**
 * What an agent did, from the kernel's counters: read and write calls and their bytes (sockets,
 * SQLite and /proc alike) and voluntary context switches (each a wake-up of an idle process).
 */
const activity = (pid: number) => {
  const io = Object.fromEntries(
    readFileSync(`/proc/${pid}/io`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(': ')),
  ) as Record<string, string>;
  const wakeups = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return [Number(io.syscr), Number(io.rchar), Number(io.syscw), Number(io.wchar), Number(wakeups)];
};
const ACTIVITY = ['reads', 'read B', 'writes', 'written B', 'wake-ups'];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const profileDir = values.profile ? resolve(values.profile) : undefined;
const envOf = (side: string) => {
  if (!profileDir) return undefined;
  mkdirSync(join(profileDir, side), { recursive: true });
  return {
    PLEXUS_NO_BUNDLE: '1',
    NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${join(profileDir, side)}`,
  };
};
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const before = await startBefore(5, { prefix: 'b', env: envOf('before') });
// If the second mesh fails to start, the first must not be left running.
const after = await startAfter(5, { prefix: 'a', env: envOf('after') }).catch(async (err) => {
  await before.stop();
  throw err;
});
try {
  // Let both settle after their joins before measuring.
  await new Promise((r) => setTimeout(r, Number(values['settle-s']) * 1000));
  const sides = {
    before: before.nodes.map((n) => n.proc!.pid!),
    after: after.nodes.map((n) => n.proc!.pid!),
  };
  const cpu: Record<string, number[]> = { before: [], after: [] };
  const windowFromUs = nowUs();
  const act0 = Object.fromEntries(Object.entries(sides).map(([k, pids]) => [k, pids.map(activity)]));
  for (let w = 0; w < windows; w++) {
    const t0 = Object.fromEntries(Object.entries(sides).map(([k, pids]) => [k, pids.map(ticks)]));
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const line: string[] = [];
    for (const [k, pids] of Object.entries(sides)) {
      const pct = pids.map((p, i) => ((ticks(p) - t0[k][i]) / 100 / windowS) * 100);
      cpu[k].push(...pct);
      line.push(`${k} ${(pct.reduce((a, b) => a + b, 0) / pct.length).toFixed(2)} %`);
    }
    console.log(`window ${w + 1}/${windows} (${windowS} s): mean per agent ${line.join(', ')}`);
  }
  const windowToUs = nowUs();
  for (const [k, pids] of Object.entries(sides)) {
    const perS = ACTIVITY.map((_, j) =>
      median(pids.map((p, i) => (activity(p)[j] - act0[k][i][j]) / ((windowToUs - windowFromUs) / 1e6))),
    );
    console.log(
      `${k}: per agent per second (median): ${ACTIVITY.map((a, j) => `${perS[j].toFixed(1)} ${a}`).join(', ')}`,
    );
  }
  console.log(`windows: CLOCK_MONOTONIC ${windowFromUs}..${windowToUs} µs (bench/cpu-profile.ts)`);
  for (const [k, pids] of Object.entries(sides)) {
    const xs = cpu[k];
    console.log(
      `${k}: CPU per agent median ${median(xs).toFixed(2)} % (min ${Math.min(...xs).toFixed(2)}, ` +
        `max ${Math.max(...xs).toFixed(2)}, ${xs.length} samples); RSS ${pids.map((p) => rssMb(p).toFixed(0)).join(' ')} MB`,
    );
  }
  if (profileDir) {
    // SIGTERM lets each agent exit normally, which is when node writes its profile.
    await Promise.all([...before.nodes, ...after.nodes].map((n) => n.stop('SIGTERM')));
    for (const [side, pids] of Object.entries(sides)) {
      const s = emptySelfTime();
      const files = readdirSync(join(profileDir, side)).filter((f) => pids.some((p) => f.includes(`.${p}.`)));
      for (const f of files) windowSelfTime(join(profileDir, side, f), windowFromUs, windowToUs, s);
      printSelfTime(`${side} (${files.length} profiles)`, s, files.length, (windowToUs - windowFromUs) / 1e6);
    }
  }
} finally {
  await before.stop();
  await after.stop();
}
