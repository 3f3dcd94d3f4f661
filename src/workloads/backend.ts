/**
 * The contract between the workload manager and what runs processes: the embedded `process`
 * supervisor or `systemd`. Both pass the shared contract suite in test/unit/workloads-backend-contract.
 */
import type { EventEmitter } from 'node:events';
import type { AppUser } from './app-users.ts';
import type { RestartPolicy } from './spec.ts';

/** Everything a backend needs to run one app. Built fresh for each (re)start. */
export interface LaunchSpec {
  app: string;
  release: string;
  /** The release folder (not `current`, so a later switch does not move a running process). */
  cwd: string;
  /** Shell command, run as `/bin/sh -c "exec CMD"`. */
  cmd: string;
  /** The child's full environment, secrets included: never log this object. */
  env: Record<string, string>;
  restart: RestartPolicy;
  /** Where stdout and stderr go (process backend). */
  logFile: string;
  /** The app's own folder: the only place a hardened unit may write. */
  appDir: string;
  /**
   * The user the process runs as (issue 13), supplementary groups dropped. Undefined when the
   * agent is not root and so cannot switch: the app then runs as the agent's own user.
   */
  user?: AppUser;
  /** Capabilities it keeps as that user (APP_CAPABILITIES names); none when absent. */
  capabilities?: string[];
  /**
   * Tells two processes of one app apart while they overlap during a deploy (issue 18): the
   * release's private port. The systemd backend names the unit after it; absent for an app
   * without a port (one unit, `plexus-app-APP.service`).
   */
  instance?: string;
}

/** How a new process takes over from the one running. */
export interface LaunchOptions {
  /**
   * Start the new process beside the running one instead of stopping that first (issue 18: an
   * app with a port, whose new release listens on a fresh private port). The running process is
   * no longer supervised as the app's: the caller either retires it once traffic has moved
   * (`retire`) or takes it back (`adopt`) when the new release fails its health check.
   */
  overlap?: boolean;
  /**
   * Without overlap (the fallback, no kernel redirect): the port the running process listens on.
   * The new process starts as soon as that port stops accepting (the old one got SIGTERM and
   * closed its listener) instead of when the old process has exited: it may drain its requests
   * meanwhile. Without it the new process starts once the old one is gone.
   */
  handoffPort?: number;
}

/** A process an overlapping launch set aside: what `retire` and `adopt` need to find it again. */
export interface SetAside {
  pid: number;
  pidStart: string | null;
  /** Its LaunchSpec's `instance` (systemd: which unit), if it had one. */
  instance?: string;
}

/** What a backend reports about an app's process. */
export interface RunState {
  status: 'running' | 'stopped' | 'failed' | 'crashloop';
  pid: number | null;
  /** Start time of `pid` from /proc, to recognise it after an agent restart. */
  pidStart: string | null;
  startedAt: number | null;
  /** Restarts by the supervisor since the last deploy or manual start. */
  restarts: number;
}

/** Why the state changed. */
export type RunChange = 'start' | 'exit' | 'crash' | 'restart' | 'failed' | 'stop' | 'adopt';

/** Events of a backend. */
export interface BackendEvents {
  /** An app's process state changed; `detail` is a short human note (exit code, signal). */
  change: [app: string, state: RunState, why: RunChange, detail: string | undefined];
}

/** What the manager remembers about an app, to take it back over after an agent restart. */
export interface AdoptInfo {
  spec: LaunchSpec;
  pid: number | null;
  pidStart: string | null;
  startedAt: number | null;
  restarts: number;
  /** Whether the app should be running. */
  wanted: boolean;
}

/** A way to run app processes. */
export interface Backend extends EventEmitter<BackendEvents> {
  readonly kind: 'process' | 'systemd';
  /**
   * Begins watching app processes (systemd: checks systemd can run here, then polls unit state);
   * the manager calls it in its own `start()`, before it adopts apps. Building a backend does no I/O.
   */
  start(): void;
  /** Starts the app (stopping a previous process of it first). Resolves once it has a pid. */
  launch(spec: LaunchSpec, opts?: LaunchOptions): Promise<RunState>;
  /** Stops the app: SIGTERM to its process group, SIGKILL after `graceMs`. */
  halt(app: string, graceMs?: number): Promise<void>;
  /**
   * Stops a process an overlapping launch set aside (the old release, once drained): SIGTERM,
   * SIGKILL after `graceMs`; systemd also removes its unit. A process already gone is fine.
   */
  retire(app: string, old: SetAside, graceMs?: number): Promise<void>;
  /**
   * After an agent restart, once the app is adopted: stops what a previous agent left of it
   * besides its live process (an old release it died draining): process groups running in
   * `releasesDir`, or units of other instances. Returns how many it stopped.
   */
  sweep(app: string, releasesDir: string, graceMs?: number): Promise<number>;
  /** After an agent restart: re-adopt a live process, or start one that should run but is gone. */
  adopt(app: string, info: AdoptInfo): Promise<RunChange>;
  /** The current state, if the backend knows the app. */
  state(app: string): RunState | undefined;
  /** Forgets an app (after halt, on rm). */
  forget(app: string): Promise<void>;
  /** The last `n` log lines. */
  tail(app: string, logFile: string, n: number): Promise<string[]>;
  /** Streams new log lines until `signal` aborts. */
  follow(
    app: string,
    logFile: string,
    onLines: (lines: string[]) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void>;
  /** Periodic housekeeping (log rotation); called by the manager. */
  tick?(): Promise<void>;
  /** Stops supervising; running apps are left running so they survive an agent restart. */
  close(): Promise<void>;
}
