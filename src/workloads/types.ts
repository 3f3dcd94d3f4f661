/**
 * The public shapes of the workload manager: what it reports about an app, what a deploy asks
 * for and returns, and how it is built. They live apart from the manager so that every part of
 * it (release switching, deploys, recovery) can name them without importing the manager itself.
 */
import type { Logger } from '../logging/index.ts';
import type { Db } from '../store/index.ts';
import type { AppStatus } from './app-repo.ts';
import type { Backend } from './backend.ts';
import type { BundleSource, DeployProgress } from './deploy-source.ts';
import type { AppEventKind } from './event-repo.ts';
import type { ExtractLimits } from './extract.ts';
import type { KernelRedirectInit } from './kernel-redirect.ts';
import type { RunSpecInput } from './spec.ts';

/** One app as `plexus apps --json` shows it and telemetry publishes it (issue 3, State). */
export interface AppInfo {
  name: string;
  status: AppStatus;
  pid: number | null;
  release: string | null;
  restarts: number;
  uptimeS: number | null;
  cpuPct: number | null;
  memMb: number | null;
  port: number | null;
  /** In `apps.list` only: why a deploy of this app stops it before starting the new release (issue 18). */
  downtimeDeploys?: string;
}

/** A change of an app's state, for listeners such as telemetry. */
export interface AppChange {
  app: string;
  kind: AppEventKind;
  detail: string | null;
  /** The app after the change; undefined once removed. */
  info: AppInfo | undefined;
}

/** Events of the workload manager. */
export interface WorkloadsEvents {
  /** Any app changed state (deploy, crash, restart, stop, removal…). */
  change: [AppChange];
}

/** A deploy request. */
export interface DeployRequest {
  app: string;
  source: BundleSource;
  /** Flags given with the deploy; they override the bundle's plexus.yaml. */
  flags?: Omit<RunSpecInput, 'env'>;
  /** Env vars to set with the deploy (stored encrypted, applied only if the deploy succeeds). */
  env?: Record<string, string>;
  tenant?: string;
  /** Run as this existing user instead of the app's own (`--user`); root needs `allowRoot`. */
  user?: string;
  /** An admin's consent to run the app as root (`--allow-root`). */
  allowRoot?: boolean;
  /** Capabilities to give the app (`--cap`, admins); replaces what it had. Kept when absent. */
  capabilities?: string[];
  signal?: AbortSignal;
  onProgress?(p: DeployProgress): void;
}

/** What a deploy or rollback did. */
export interface DeployResult {
  app: string;
  release: string;
  previous: string | null;
  status: AppStatus;
  pid: number | null;
  healthy: boolean;
  /** Wall time of the whole deploy, download included. */
  tookMs: number;
}

/** Options of the manager. */
export interface WorkloadsInit {
  /** DATA/apps. */
  appsDir: string;
  /** Health deadline when the app sets none; default 30 s. */
  healthTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace. */
  stopGraceMs?: number;
  /** Archive limits (tests lower them). */
  extractLimits?: ExtractLimits;
  /** Largest bundle accepted, download or upload (default MAX_BUNDLE_BYTES). */
  maxBundleBytes?: number;
  /** A download that sends nothing for this long fails (default 30 s). */
  downloadIdleTimeoutMs?: number;
  /** Variables copied from the agent's environment into every app's. */
  inheritEnv?: string[];
  /** Longest drain of an old release after traffic moved off it (default DRAIN_TIMEOUT_MS, 30 s). */
  drainTimeoutMs?: number;
  /**
   * The kernel redirect of declared ports (issue 18: zero-downtime deploys); absent (tests) or
   * `off`, deploys stop the old release before starting the new one (the fallback, said once in
   * the log); `off` also drops a table left from before.
   */
  redirect?: KernelRedirectInit;
  /** The agent's own TCP ports (API, mesh, SOCKS, tunnels): no app may declare one. */
  reservedPorts?: number[];
  /** Allows apps to declare a port below 1024 (refused by default: system services live there). */
  lowPorts?: boolean;
}

/** Dependencies of the manager. */
export interface WorkloadsComponents {
  db: Db;
  logger: Logger;
  backend: Backend;
  /** The 32-byte master key for secrets (`loadMasterKey(DATA/keys/master.key)`). */
  masterKey: Buffer;
}
