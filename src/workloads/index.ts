/**
 * The workload manager: apps, releases, artifacts, the `process` and `systemd` backends, logs,
 * secrets and webhook deploys (docs/workloads.md; issue 3).
 *
 * What other subsystems use (plain typed methods and one event):
 *
 * - `workloads.list(): AppInfo[]` — every app as `{name, status, pid, release, restarts,
 *   uptimeS, cpuPct, memMb, port}`, with status `deploying|running|stopped|failed|crashloop`.
 *   CPU% is measured between two calls, so call it on a steady interval (telemetry does) and
 *   the figure is the average since the previous call; the first call gives the process's
 *   lifetime average. Cheap: one small /proc read per app.
 * - `workloads.on('change', (c: AppChange) => …)` — fired at once on every state change of an
 *   app: deploy, deploy-failed, rollback, start, stop, crash, restart, failed, adopt, env,
 *   remove. `c.info` is the app's `AppInfo` after the change (undefined once removed). Telemetry
 *   publishes a fresh record on it; never does it carry secret values.
 * - `workloads.ports(): {name, port}[]` — apps that declare a `port`, by app name: the tunnels
 *   subsystem exposes each under its name (`api.web-2`).
 * - `workloads.addTrafficSwitch(sw: TrafficSwitch): () => void` — the edge registers itself: each
 *   deploy of an app with a port calls `sw.switchTo(app, privatePort)` once the new release is
 *   healthy (after the kernel redirect of its declared port), and waits for `sw.inFlight?.(app, port)`
 *   to reach 0 before it stops the old release (traffic.ts, issue 18).
 * - `workloads.upstreams.upstreamOf(app)` — the private port of the app's live release, for a
 *   switch that (re)applies its configuration (Caddy restarted, a domain added).
 *
 * The composition root reads the master key (`loadMasterKey`), builds the manager with
 * `createWorkloads` (no I/O), registers `workloadsActions`, mounts the webhook route
 * (src/api/routes/hooks.ts), and calls `start()` after the mesh and `stop()` before it. `stop()`
 * leaves apps running: they survive an agent restart or upgrade and are re-adopted by pid and
 * process start time on the next `start()`.
 */
import type { Backend } from './backend.ts';
import { createProcessBackend, type ProcessBackendInit } from './process-backend.ts';
import { createSystemdBackend } from './systemd-backend.ts';
import type { WorkloadsComponents, WorkloadsInit } from './types.ts';
import { Workloads } from './workloads.ts';

export { workloadsActions } from './actions.ts';
export type { AppStatus } from './app-repo.ts';
export type { AdoptInfo, Backend, LaunchSpec, RunChange, RunState } from './backend.ts';
export type { BundleSource, DeployProgress } from './deploy-source.ts';
export * from './errors.ts';
export type { AppEvent, AppEventKind } from './event-repo.ts';
export { workloadsMigrations } from './migrations.ts';
export { createProcessBackend } from './process-backend.ts';
export { loadMasterKey } from './secrets.ts';
export { parseHealth, type RestartPolicy, type RunSpec } from './spec.ts';
export { createSystemdBackend, systemdUnavailableReason } from './systemd-backend.ts';
export { renderUnit } from './systemd-unit.ts';
export type { AppUpstreams, TrafficSwitch } from './traffic.ts';
export type * from './types.ts';
export { signWebhook } from './webhook.ts';
export { Workloads } from './workloads.ts';

/** Options of `createWorkloads`. */
export interface CreateWorkloadsInit extends WorkloadsInit {
  /** `process` (default) or `systemd`. */
  backend: 'process' | 'systemd';
  /** Supervisor tunables for the process backend. */
  processBackend?: ProcessBackendInit;
}

/** What `createWorkloads` uses: the manager's components but the backend, which it builds. */
export type CreateWorkloadsComponents = Omit<WorkloadsComponents, 'backend'>;

/**
 * Builds the workload manager with the configured backend, without I/O. `start()` takes the apps
 * over (and, for systemd, checks that it can run here).
 */
export function createWorkloads(init: CreateWorkloadsInit, components: CreateWorkloadsComponents): Workloads {
  const logger = components.logger;
  const backend: Backend =
    init.backend === 'systemd'
      ? createSystemdBackend({}, { logger })
      : createProcessBackend(init.processBackend ?? {}, { logger });
  return new Workloads(init, { db: components.db, logger, backend, masterKey: components.masterKey });
}
