/**
 * The agent process's tuning, in one place: V8 heap flags (heap.ts), handing freed memory back to
 * the kernel while idle (malloc-trim.ts), both paced by the event-loop meter (loop-busy.ts). The
 * glibc malloc settings that must be set before the process starts are in bin/plexus (and
 * malloc-env.mjs takes them back out for the apps the agent starts); the bundle the agent runs
 * from is built by bundle.mjs and found by launcher.mjs.
 *
 * Every knob names the bench that shows what it buys: bench/join.ts for an idle agent's RSS,
 * bench/tunnel.ts for throughput and CPU per GB.
 */
import { relaxHeapWhenBusy, tuneHeapForIdle } from './heap.ts';
import { type TrimLog, trimMallocWhenIdle } from './malloc-trim.ts';

/** The tuning of a running agent, from `tuneAgentRuntime`. */
export interface AgentRuntime {
  /** Starts the tuning that watches the running agent (call once the daemon is up). */
  start(log: TrimLog): void;
  /** Stops its timers (they never keep the process alive anyway). */
  stop(): void;
}

/**
 * Sets the agent's start-up V8 flags at once, so call it before the daemon loads; returns what
 * starts the rest once the daemon is up.
 */
export function tuneAgentRuntime(): AgentRuntime {
  tuneHeapForIdle();
  const running: { stop(): void }[] = [];
  return {
    start(log) {
      running.push(relaxHeapWhenBusy(), trimMallocWhenIdle(log));
    },
    stop() {
      for (const r of running.splice(0)) r.stop();
    },
  };
}
