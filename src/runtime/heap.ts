/**
 * V8 heap settings of the long-running agent. They pull two ways: an idle agent should hold
 * little memory (issue 2: idle RSS), and one moving a tunnel's hundreds of MB/s through Buffers
 * should spend its CPU on the bytes, not on the collector (issue 6). So the agent starts lean and
 * gives its young generation room to grow the first time it is really busy.
 *
 * - `--external-memory-accounted-in-global-limit` (always): Buffers are external memory; by
 *   default V8 answers their growth with a full mark-compact of the whole heap every ~30 ms at
 *   tunnel speeds, which cost the agent more CPU than the bytes themselves (bench/tunnel.ts:
 *   300 → 500 MB/s, CPU per GB halved). Counted in the global limit, they are freed by the cheap
 *   young-generation scavenges.
 * - `--semi-space-growth-factor=1` (while idle): the young generation stays at its initial 1 MB
 *   semi-space instead of doubling up to 32 MB during start-up's allocation burst, and V8 keeps
 *   those pages once it shrinks back: ~40 MB of an idle agent's RSS (5-agent mesh idle 60 s:
 *   167-179 → 129-132 MB, bench/join.ts). `--max-semi-space-size` would say the same, but V8 reads it only
 *   when it sets up the heap, before this code runs.
 * - back to the default factor (2) once the event loop has been busy for a while: pinned at
 *   1 MB, a tunnel's scavenges came so often that a freshly started or long-idle agent moved
 *   320-400 MB/s at 2-2.5 s of CPU per 0.5 GB instead of 520-770 MB/s at 0.9-1.5 s
 *   (bench/tunnel.ts: a 512 MiB forward between two agents, 8 runs each, before and after 90 s
 *   idle).
 * - not `--optimize-for-size`, a smaller `--heap-growing-percent`, nor a forced full collection
 *   once start-up is over: each saved ~10 MB more when idle but left V8 with tight heap limits,
 *   and with Buffers counted in the global limit a tunnel then ran into full collections
 *   (bench/tunnel.ts, forward: 561 → 248, → 297 and 669 → 303 MB/s).
 */
import { setFlagsFromString } from 'node:v8';
import { loopBusyMeter } from './loop-busy.ts';

/** How often the event loop's load is looked at. */
const CHECK_MS = 500;
/** Start-up's own burst of work is not what the heap should be sized for. */
const START_GRACE_MS = 10_000;
/** The share of a check period the loop must be busy for the agent to count as busy. */
const BUSY_UTILIZATION = 0.5;

/** Sets the start-up flags; call before the daemon loads. */
export function tuneHeapForIdle(): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit');
  setFlagsFromString('--semi-space-growth-factor=1');
}

/**
 * Lets the young generation grow the first time the agent is busy (see the file comment), then
 * stops looking. The first seconds after start (dialling every member, syncing) do not count,
 * and busy means two checks in a row. The timers never keep the process alive.
 */
export function relaxHeapWhenBusy(): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  // Made when the grace period ends, so that start-up's work is not counted.
  let busy: () => number;
  let busyChecks = 0;
  const check = () => {
    busyChecks = busy() >= BUSY_UTILIZATION ? busyChecks + 1 : 0;
    if (busyChecks < 2) return;
    setFlagsFromString('--semi-space-growth-factor=2');
    clearInterval(timer);
  };
  const grace = setTimeout(() => {
    busy = loopBusyMeter();
    timer = setInterval(check, CHECK_MS);
    timer.unref();
  }, START_GRACE_MS);
  grace.unref();
  return {
    stop: () => {
      clearTimeout(grace);
      clearInterval(timer);
    },
  };
}
