/**
 * Garbage collection while the agent is idle. Start-up (loading ~1300 modules) and then the
 * steady trickle of an idle agent (gossip, pings, telemetry: ~0.6 MB/s, some of it living long
 * enough to reach the old generation) leave garbage and free pages that V8 gives back only at
 * its next full collection, which at that rate comes every few minutes. A full collection right
 * after start-up, and again whenever the heap has grown by a few MB while the agent sat idle,
 * keeps an idle agent ~10 MB smaller (5-agent mesh idle 60 s: 122-125 → 112-113 MB RSS). One
 * costs ~40 ms of CPU (~20 ms of it on the main thread). Browsers run such collections in idle
 * time; Node reports no idle time to V8, so the agent does it itself, and only when its event
 * loop was nearly idle over the last period: a busy agent (a tunnel moving hundreds of MB/s)
 * is left to V8's own schedule, whose young-generation collections free the tunnel's buffers
 * far more cheaply.
 */
import { performance } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Options of the idle collector. */
export interface IdleGcInit {
  /** How often to look; default IDLE_GC_INTERVAL_MS. */
  intervalMs?: number;
  /** Collect only if the event loop was busy at most this share of the period; default 5 %. */
  maxUtilization?: number;
  /** Collect only if the heap grew at least this much since the last collection; default 8 MiB. */
  minGrowthBytes?: number;
}

/**
 * How often to look. With the growth threshold below, an idle agent collects at most once a
 * minute, ~0.07 % of a core at worst (a 30 s / 4 MiB policy collected twice as often for the
 * same RSS).
 */
export const IDLE_GC_INTERVAL_MS = 60_000;

/** Starts the idle collector; the timer never keeps the process alive. */
export function startIdleGc(init: IdleGcInit = {}): { stop(): void } {
  // `gc` only exists in contexts created while --expose-gc is set: take it from a fresh one
  // and turn the flag off again, so no other context (and no app code) ever sees it.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  const maxUtilization = init.maxUtilization ?? 0.05;
  const minGrowth = init.minGrowthBytes ?? 8 * 1024 * 1024;
  let since = performance.eventLoopUtilization();
  // Start-up leaves the most garbage of all (loading ~1300 modules): collect it right away, while
  // the process is busy starting anyway, rather than inside its first idle minutes.
  gc();
  let heapAfter = getHeapStatistics().total_physical_size;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, since).utilization;
    since = now;
    if (busy > maxUtilization) return;
    // Committed heap, measured from the smallest seen since our last collection (V8 may have
    // run its own meanwhile).
    const heap = getHeapStatistics().total_physical_size;
    heapAfter = Math.min(heapAfter, heap);
    if (heap - heapAfter < minGrowth) return;
    gc();
    heapAfter = getHeapStatistics().total_physical_size;
  }, init.intervalMs ?? IDLE_GC_INTERVAL_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
