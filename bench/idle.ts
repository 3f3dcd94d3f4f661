/**
 * Idle CPU and RSS of two 5-agent meshes running at the same time, one from another checkout
 * (before) and one from this work tree (after), measured over the same windows so that a shared
 * machine's drift hits both alike (bench/join.ts measures one tree at a time, and its idle figure
 * moved by ±0.2 points between runs on this kind of machine).
 *
 *   node bench/idle.ts --before DIR [--windows 6] [--window-s 20]
 *
 * DIR is a bootstrapped checkout of the other revision, e.g. the worktree bench/compare makes
 * (`bench/compare REV 1 …` leaves it at /tmp/plexus-bench-<rev12>). Prints each window's mean
 * per side, then the median, min and max CPU % per agent over every window and agent, and RSS.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster as startAfter } from '../test/helpers/cluster.ts';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    windows: { type: 'string', default: '6' },
    'window-s': { type: 'string', default: '20' },
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
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const before = await startBefore(5, { prefix: 'b' });
// If the second mesh fails to start, the first must not be left running.
const after = await startAfter(5, { prefix: 'a' }).catch(async (err) => {
  await before.stop();
  throw err;
});
try {
  // Let both settle after their joins before measuring.
  await new Promise((r) => setTimeout(r, 15_000));
  const sides = {
    before: before.nodes.map((n) => n.proc!.pid!),
    after: after.nodes.map((n) => n.proc!.pid!),
  };
  const cpu: Record<string, number[]> = { before: [], after: [] };
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
  for (const [k, pids] of Object.entries(sides)) {
    const xs = cpu[k];
    console.log(
      `${k}: CPU per agent median ${median(xs).toFixed(2)} % (min ${Math.min(...xs).toFixed(2)}, ` +
        `max ${Math.max(...xs).toFixed(2)}, ${xs.length} samples); RSS ${pids.map((p) => rssMb(p).toFixed(0)).join(' ')} MB`,
    );
  }
} finally {
  await before.stop();
  await after.stop();
}
