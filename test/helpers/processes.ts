/** Finding and cleaning up app processes a test started, by their working directory. */
import { readdirSync, readlinkSync } from 'node:fs';

/** Pids of live processes whose working directory is under `dir` (Linux /proc). */
export function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/cwd`).startsWith(dir)) pids.push(Number(d));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

/** SIGKILLs every process (and its group) working under `dir`: the last line of a test's cleanup. */
export function killProcessesUnder(dir: string): void {
  for (const pid of processesUnder(dir)) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
