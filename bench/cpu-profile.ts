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
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time in ms inside the window, by function (`name url:line`) and by module, and by the
 * nearest caller in the agent's own code (src/): which of our functions the time was spent
 * under, libraries included; time with no such caller is charged to the outermost library frame.
 */
export interface SelfTime {
  totalMs: number;
  byFunction: Map<string, number>;
  byModule: Map<string, number>;
  byCaller: Map<string, number>;
}

/** An empty SelfTime to add profiles into. */
export function emptySelfTime(): SelfTime {
  return { totalMs: 0, byFunction: new Map(), byModule: new Map(), byCaller: new Map() };
}

const frameName = ({ functionName, url, lineNumber }: ProfileNode['callFrame']) =>
  `${functionName || '(anonymous)'} ${moduleOf(url)}:${lineNumber + 1}`;

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
  const out = into ?? emptySelfTime();
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const callerOf = (id: number): string => {
    // The nearest src/ frame; failing that, the outermost library frame (node's own are skipped).
    let library: string | undefined;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { callFrame } = byId.get(at)!;
      const mod = moduleOf(callFrame.url);
      if (mod.startsWith('src/')) return `${callFrame.functionName || '(anonymous)'} ${mod}`;
      if (!mod.startsWith('node:') && !mod.startsWith('(')) library = `${callFrame.functionName} ${mod}`;
    }
    return `(no src/ caller) ${library ?? frameName(byId.get(id)!.callFrame)}`;
  };
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    // A sample's time is charged to the sample that ends it (V8 samples at the interval's end).
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    if (t < fromUs || t >= toUs) continue;
    const { callFrame } = byId.get(p.samples[i])!;
    if (callFrame.functionName === '(idle)') continue;
    const fn = frameName(callFrame);
    out.totalMs += dt;
    const caller = callerOf(p.samples[i]);
    out.byCaller.set(caller, (out.byCaller.get(caller) ?? 0) + dt);
    out.byFunction.set(fn, (out.byFunction.get(fn) ?? 0) + dt);
    const mod = moduleOf(callFrame.url);
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
    ['by nearest src/ caller', s.byCaller],
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
  const s = emptySelfTime();
  for (const f of files) windowSelfTime(f, Number(from), Number(to), s);
  printSelfTime('profiles', s, files.length, (Number(to) - Number(from)) / 1e6);
}
