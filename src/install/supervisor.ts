/**
 * The agent's service on a host without systemd: packaging/supervisor/plexus-supervise, which
 * does what plexus.service does (restart on failure, count the restarts, restart on request,
 * stop only the agent's process). Install starts it, upgrade restarts the agent through it
 * (SIGHUP) and reads its restart count, uninstall stops it (docs/install.md).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SupervisorError } from './errors.ts';
import type { InstallLayout } from './layout.ts';
import type { Step } from './steps.ts';

/** Where the supervisor keeps its pid, the agent's and its restart count (the unit's RuntimeDirectory). */
export const SUPERVISOR_RUN_DIR = '/run/plexus';
/** The script, inside a release. */
export const SUPERVISOR_SCRIPT = join('packaging', 'supervisor', 'plexus-supervise');
/** How long a requested restart may take before the agent's pid must have changed. */
const RESTART_TIMEOUT_MS = 30_000;

/** Which service manager runs the agent on this host: systemd when it is PID 1's, else the supervisor. */
export function serviceKind(): 'systemd' | 'supervisor' {
  return existsSync('/run/systemd/system') ? 'systemd' : 'supervisor';
}

const readNumber = (path: string): number | undefined => {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return /^\d{1,10}$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
};

/** The running supervisor's pid, or undefined (no pid file, or its process is not the supervisor). */
export function supervisorPid(run = SUPERVISOR_RUN_DIR): number | undefined {
  const pid = readNumber(join(run, 'supervisor.pid'));
  if (!pid) return undefined;
  try {
    // A pid file left by a supervisor that died may name an unrelated process since.
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('plexus-supervise') ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The upgrade's restart and restart count, through the supervisor. */
export function supervisorControl(run = SUPERVISOR_RUN_DIR) {
  return {
    /** Asks for a restart (SIGHUP) and resolves once a new agent process runs. */
    restart: async (): Promise<void> => {
      const pid = supervisorPid(run);
      if (!pid)
        throw new SupervisorError(`plexus-supervise is not running (no live pid in ${run}/supervisor.pid)`);
      const before = readNumber(join(run, 'agent.pid'));
      process.kill(pid, 'SIGHUP');
      for (const end = Date.now() + RESTART_TIMEOUT_MS; Date.now() < end; ) {
        const now = readNumber(join(run, 'agent.pid'));
        if (now && now !== before) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new SupervisorError(
        `plexus-supervise did not restart the agent within ${RESTART_TIMEOUT_MS / 1000} s`,
      );
    },
    /** The restarts after failures since the supervisor started (systemd's NRestarts). */
    restarts: async (): Promise<number | undefined> => readNumber(join(run, 'supervisor.restarts')),
  };
}

/** Starts the supervisor from `current`, detached, unless one runs. */
export function startSupervisorStep(layout: InstallLayout, env: NodeJS.ProcessEnv): Step {
  const script = join(layout.current, SUPERVISOR_SCRIPT);
  return {
    describe: `start ${script} (no systemd on this host)`,
    needed: () => supervisorPid() === undefined,
    apply: () => {
      spawn(script, [], { detached: true, stdio: 'ignore', env }).unref();
    },
  };
}

/** Stops the supervisor and its agent (SIGTERM), waiting up to 30 s for it to go. */
export function stopSupervisorStep(): Step {
  return {
    describe: 'stop plexus-supervise and its agent',
    needed: () => supervisorPid() !== undefined,
    apply: () => {
      const pid = supervisorPid();
      if (!pid) return;
      process.kill(pid, 'SIGTERM');
      // Steps are synchronous: a short blocking wait, bounded.
      const end = Date.now() + 30_000;
      while (supervisorPid() !== undefined && Date.now() < end)
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      if (supervisorPid() !== undefined)
        throw new SupervisorError('plexus-supervise did not stop within 30 s');
    },
  };
}
