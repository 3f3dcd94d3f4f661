/**
 * Self time of V8 CPU profiles (`node --cpu-prof`) inside one time window, by function and by
 * module: what an agent spent while idle, leaving out its start and its shutdown. The window is
 * given in microseconds of CLOCK_MONOTONIC, the clock of a profile's `startTime` and of
 * `process.hrtime` in any process on the machine, so a bench can mark it from outside the agent.
 *
 *   node bench/cpu-profile.ts FROM_US TO_US FILE.cpuprofile…   (or use `windowSelfTime`)
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time in ms inside the window, by function (`name url:line`) and by module. */
export interface SelfTime {
  totalMs: number;
  byFunction: Map<string, number>;
  byModule: Map<string, number>;
}

/** A module's short name: the package under node_modules, the file under src/, or the url. */
export function moduleOf(url: string): string {
  if (!url) return '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  const src = /\/(src\/.+|test\/.+)$/.exec(url);
  if (src) return src[1];
  return url.replace(/^file:\/\//, '');
}

/** Adds the self time of every sample of `file` in [fromUs, toUs) to `into`. */
export function windowSelfTime(file: string, fromUs: number, toUs: number, into?: SelfTime): SelfTime {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const out = into ?? { totalMs: 0, byFunction: new Map(), byModule: new Map() };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    // A sample's time is charged to the sample that ends it (V8 samples at the interval's end).
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    if (t < fromUs || t >= toUs) continue;
    const { functionName, url, lineNumber } = byId.get(p.samples[i])!.callFrame;
    if (functionName === '(idle)') continue;
    const fn = `${functionName || '(anonymous)'} ${moduleOf(url)}:${lineNumber + 1}`;
    out.totalMs += dt;
    out.byFunction.set(fn, (out.byFunction.get(fn) ?? 0) + dt);
    const mod = moduleOf(url);
    out.byModule.set(mod, (out.byModule.get(mod) ?? 0) + dt);
  }
  return out;
}

/** Prints the top entries of a SelfTime, in ms per agent per minute of window. */
export function printSelfTime(label: string, s: SelfTime, agents: number, windowS: number, top = 25): void {
  const scale = 60 / windowS / agents;
  console.log(`${label}: busy ${(s.totalMs * scale).toFixed(0)} ms per agent per minute (idle excluded)`);
  for (const [title, map] of [
    ['by module', s.byModule],
    ['by function', s.byFunction],
  ] as const) {
    console.log(`  ${title}:`);
    for (const [k, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`    ${(ms * scale).toFixed(1).padStart(7)} ms  ${k}`);
    }
  }
}

if (import.meta.main) {
  const [from, to, ...files] = process.argv.slice(2);
  if (!files.length) throw new Error('usage: node bench/cpu-profile.ts FROM_US TO_US FILE.cpuprofile…');
  const s: SelfTime = { totalMs: 0, byFunction: new Map(), byModule: new Map() };
  for (const f of files) windowSelfTime(f, Number(from), Number(to), s);
  printSelfTime('profiles', s, files.length, (Number(to) - Number(from)) / 1e6);
}
