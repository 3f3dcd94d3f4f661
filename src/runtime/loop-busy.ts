/** How busy the event loop has been: what the agent's idle-time tuning looks at. */
import { performance } from 'node:perf_hooks';

/**
 * A meter of the event loop: each call returns the share of time the loop was busy (0..1)
 * since the previous call, or since the meter was made.
 */
export function loopBusyMeter(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return busy;
  };
}
