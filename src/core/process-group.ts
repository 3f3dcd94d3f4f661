/**
 * Signalling a process group, which the workloads (an app and the workers it forked) and the
 * shell (a session and what it started) both need.
 */

/** Signals the process group led by `pid` (so children it forked get it too), else the pid. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
