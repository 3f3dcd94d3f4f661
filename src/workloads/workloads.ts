/**
 * The workload manager: the verbs on apps (deploy, rollback, start, stop, restart, remove, env,
 * webhooks, logs), one operation per app at a time. It keeps the database in step with what the
 * backend runs and tells listeners (telemetry) about every change. Deploys and rollbacks are in
 * deploy.ts, the health-gated switch in release-switch.ts, the take-over on start in recovery.ts.
 */
import { EventEmitter } from 'node:events';
import { dirname } from 'node:path';
import { AppContext } from './app-context.ts';
import { protectDataDir, unpassableAncestor } from './app-files.ts';
import type { AppRepo, AppRow } from './app-repo.ts';
import { canSwitchUsers } from './app-users.ts';
import type { Backend, RunChange, RunState } from './backend.ts';
import { APP_LOG_CHECK_MS, STOP_GRACE_MS } from './constants.ts';
import { checkAppName, deployRelease, rollbackRelease } from './deploy.ts';
import type { DeployProgress } from './deploy-source.ts';
import type { EnvRepo } from './env-repo.ts';
import { AppBusyError, DeployFailedError, WebhookReplayError } from './errors.ts';
import type { EventRepo } from './event-repo.ts';
import type { HookRepo } from './hook-repo.ts';
import type { Redirect } from './kernel-redirect.ts';
import { recoverApp } from './recovery.ts';
import type { ReleaseRepo } from './release-repo.ts';
import { ReleaseSwitch } from './release-switch.ts';
import { type AppPaths, removeAppDir } from './releases.ts';
import { appNameSchema } from './spec.ts';
import type { AppUpstreams, TrafficSwitch } from './traffic.ts';
import type {
  AppInfo,
  DeployRequest,
  DeployResult,
  WorkloadsComponents,
  WorkloadsEvents,
  WorkloadsInit,
} from './types.ts';
import { parseWebhookBody, verifyWebhook } from './webhook.ts';

/** The workload manager. */
export class Workloads extends EventEmitter<WorkloadsEvents> {
  readonly apps: AppRepo;
  readonly releases: ReleaseRepo;
  readonly env: EnvRepo;
  readonly hooks: HookRepo;
  readonly events: EventRepo;
  readonly #ctx: AppContext;
  readonly #backend: Backend;
  readonly #switch: ReleaseSwitch;
  #tick: NodeJS.Timeout | undefined;

  /** Builds the manager; no I/O until `start()`. */
  constructor(init: WorkloadsInit, components: WorkloadsComponents) {
    super();
    const ctx = new AppContext(init, components, (change) => this.emit('change', change));
    this.#ctx = ctx;
    this.#backend = components.backend;
    this.apps = ctx.apps;
    this.releases = ctx.releases;
    this.env = ctx.env;
    this.hooks = ctx.hooks;
    this.events = ctx.events;
    this.#backend.on('change', (app, state, why, detail) => this.#onBackendChange(app, state, why, detail));
    this.#switch = new ReleaseSwitch(ctx);
  }

  /** Paths of an app. */
  paths(app: string): AppPaths {
    return this.#ctx.paths(app);
  }

  /**
   * Adds a traffic switch (the edge, issue 18): a deploy calls its `switchTo` once the new
   * release is healthy, after the kernel redirect. Returns the function that removes it.
   */
  addTrafficSwitch(sw: TrafficSwitch): () => void {
    return this.#ctx.traffic.register(sw);
  }

  /**
   * Why deploys of apps with a port stop the old release before starting the new one here (no
   * kernel redirect: not root, no nft…), or undefined when they are zero-downtime.
   */
  get downtimeDeploys(): string | undefined {
    return this.#ctx.traffic.fallbackReason;
  }

  /** Where each app's live release listens: what an edge routes to when it (re)applies its config. */
  get upstreams(): AppUpstreams {
    return this.#ctx.traffic;
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  /** Takes every app back over: re-adopts live processes, restarts those that vanished. */
  async start(): Promise<void> {
    this.#backend.start();
    if (canSwitchUsers()) {
      // Apps run as users of their own (issue 13): DATA becomes passable for them, and all of it
      // but apps/ private to the agent.
      protectDataDir(dirname(this.#ctx.init.appsDir), this.#ctx.init.appsDir);
      const blocked = unpassableAncestor(this.#ctx.init.appsDir);
      if (blocked)
        this.#ctx.logger.warn(
          { folder: blocked },
          'app users cannot pass through this folder above the data dir; apps will fail to start until it is chmod o+x',
        );
    }
    // The kernel redirect first: the rules a previous agent left stay as the database has them.
    await this.#ctx.traffic.start(liveRoutes(this.apps.list()), this.#ctx.init.redirect?.off);
    for (const row of this.apps.list()) {
      try {
        await recoverApp(this.#ctx, row);
      } catch (err) {
        this.#ctx.logger.error({ app: row.name, err }, 'cannot recover app');
      }
    }
    this.#tick = setInterval(() => void this.#backend.tick?.(), APP_LOG_CHECK_MS);
    this.#tick.unref();
  }

  /** Stops supervising. Apps keep running, so an agent restart or upgrade does not stop them. */
  async stop(): Promise<void> {
    this.#ctx.stopping = true;
    if (this.#tick) clearInterval(this.#tick);
    await this.#switch.close();
    await this.#backend.close();
  }

  // --- reading -----------------------------------------------------------------------------------

  /** Every app with status, pid, restarts, release, port, uptime, CPU% and memory. */
  list(): AppInfo[] {
    return this.#ctx.list();
  }

  /** One app's info. */
  get(app: string): AppInfo {
    return this.#ctx.info(app);
  }

  /** Apps that declare a port, by name: the services a node exposes in the mesh. */
  ports(): { name: string; port: number }[] {
    return this.apps
      .list()
      .filter((r) => r.spec.port !== undefined)
      .map((r) => ({ name: r.name, port: r.spec.port! }));
  }

  // --- deploy and rollback -----------------------------------------------------------------------

  /** Deploys a bundle as a new release, health gated; on failure the previous release is put back. */
  async deploy(req: DeployRequest): Promise<DeployResult> {
    checkAppName(req.app);
    return this.#ctx.exclusive(req.app, 'deploying', () => deployRelease(this.#ctx, this.#switch, req));
  }

  /** Puts an earlier release back (the one before the current, or `to`), health gated too. */
  async rollback(app: string, to?: string, onProgress?: (p: DeployProgress) => void): Promise<DeployResult> {
    const row = this.#ctx.row(app);
    return this.#ctx.exclusive(app, 'deploying', async () => {
      await this.#ctx.appUser(row);
      return rollbackRelease(this.#ctx, this.#switch, row, to, onProgress);
    });
  }

  // --- start, stop, remove -----------------------------------------------------------------------

  /** Starts a stopped app on its current release (picking up env changes). */
  async startApp(app: string): Promise<AppInfo> {
    const row = this.#ctx.row(app);
    return this.#ctx.exclusive(app, 'starting', async () => {
      const rel = this.#ctx.currentRelease(row);
      const state = this.#backend.state(app);
      if (state?.pid && (state.status === 'running' || state.status === 'crashloop')) return this.get(app);
      if (rel.spec.port) await this.#ctx.checkPort(app, rel.spec, undefined);
      await this.#ctx.appUser(row);
      // A fresh private port each start: the last one may have been taken while the app was down.
      const livePort =
        rel.spec.port && this.#ctx.traffic.redirects ? await this.#ctx.privatePort() : undefined;
      this.apps.update(app, { desired: 'running', livePort: livePort ?? null });
      await this.#backend.launch(this.#ctx.launchSpec(app, rel, {}, livePort ?? null));
      if (rel.spec.port && livePort) await this.#ctx.traffic.switchTo(app, rel.spec.port, livePort);
      this.#ctx.record(app, 'start', rel.id);
      return this.get(app);
    });
  }

  /** Stops an app: SIGTERM, then SIGKILL after the grace period. It stays stopped across agent restarts. */
  async stopApp(app: string): Promise<AppInfo> {
    const row = this.#ctx.row(app);
    return this.#ctx.exclusive(app, 'stopping', async () => {
      this.apps.update(app, { desired: 'stopped' });
      await this.#backend.halt(app, this.#ctx.init.stopGraceMs ?? STOP_GRACE_MS);
      // Its declared port is free again, as it was when the app itself held it.
      await this.#ctx.traffic.release(app);
      this.#ctx.record(app, 'stop', row.release);
      return this.get(app);
    });
  }

  /** Stops and starts an app (new env applies). */
  async restartApp(app: string): Promise<AppInfo> {
    const row = this.#ctx.row(app);
    return this.#ctx.exclusive(app, 'restarting', async () => {
      const rel = this.#ctx.currentRelease(row);
      const state = this.#backend.state(app);
      if (rel.spec.port && state?.pid && (state.status === 'running' || state.status === 'crashloop')) {
        // An app with a port restarts like a deploy of its own release: a new process beside the
        // old, health gated, then traffic moves and the old one drains (issue 18).
        await this.#ctx.appUser(row);
        await this.#switch.switchTo(app, rel, rel, { kind: 'restart', started: Date.now() });
        return this.get(app);
      }
      this.apps.update(app, { desired: 'running', restarts: 0 });
      await this.#backend.halt(app, this.#ctx.init.stopGraceMs ?? STOP_GRACE_MS);
      // After the stop: an app that ran as root moves to its own user with its files.
      await this.#ctx.appUser(row);
      await this.#backend.launch(this.#ctx.launchSpec(app, rel));
      this.#ctx.record(app, 'restart', rel.id, 'by operator');
      return this.get(app);
    });
  }

  /** Stops an app and deletes it: releases, env, hook secret and files. Its app log goes too. */
  async removeApp(app: string): Promise<{ app: string; removed: true }> {
    const row = this.#ctx.row(app);
    return this.#ctx.exclusive(app, 'removing', async () => {
      await this.#backend.forget(app);
      await this.#ctx.traffic.forget(app);
      this.apps.delete(app);
      // A user that is gone (or never was) leaves the agent to delete everything itself.
      const user = this.#ctx.userOf(app) ?? (await this.#ctx.appUser(row).catch(() => undefined));
      await removeAppDir(this.paths(app), user);
      this.#ctx.record(app, 'remove', null);
      this.#ctx.emitRemoved(app);
      return { app, removed: true as const };
    });
  }

  // --- env ---------------------------------------------------------------------------------------

  /** Sets env vars (encrypted). They apply on the next start or restart. */
  setEnv(
    app: string,
    vars: Record<string, string>,
  ): { app: string; names: string[]; pendingRestart: boolean } {
    this.#ctx.row(app);
    this.env.set(app, vars);
    return this.#envChanged(app, `set ${Object.keys(vars).sort().join(', ')}`, Object.keys(vars));
  }

  /** Removes env vars; they are gone from the app's environment after its next (re)start. */
  unsetEnv(app: string, names: string[]): { app: string; names: string[]; pendingRestart: boolean } {
    this.#ctx.row(app);
    const removed = this.env.unset(app, names);
    return this.#envChanged(app, `unset ${removed.join(', ') || '(nothing)'}`, removed);
  }

  #envChanged(app: string, what: string, names: string[]) {
    this.apps.update(app, { envChangedAt: Date.now() });
    // Only names go in the event log, never values.
    this.#ctx.record(app, 'env', null, what);
    const running = !!this.#backend.state(app)?.pid;
    return { app, names, pendingRestart: running && names.length > 0 };
  }

  /** Env var names, with values when `reveal` (admins only; the action checks the role). */
  listEnv(app: string, reveal: boolean): { name: string; updatedAt: number; value?: string }[] {
    const row = this.#ctx.row(app);
    const values = reveal ? this.env.reveal(app) : undefined;
    return this.env.names(row.name).map((v) => (values ? { ...v, value: values[v.name] } : v));
  }

  // --- webhooks --------------------------------------------------------------------------------

  /** The app's webhook secret, made on first use; `rotate` replaces it (the old one stops working). */
  hookSecret(app: string, rotate: boolean): { app: string; secret: string; created: boolean } {
    this.#ctx.row(app);
    const r = this.hooks.ensure(app, rotate);
    if (r.created)
      this.#ctx.record(app, 'env', null, rotate ? 'webhook secret rotated' : 'webhook secret created');
    return { app, ...r };
  }

  /**
   * Verifies a webhook call and starts the deploy it asks for in the background (a sender such as
   * a CI job must not wait out a health check). The outcome lands in the events log.
   */
  acceptWebhook(
    app: string,
    call: { timestamp?: string; signature?: string; body: Buffer },
  ): { app: string; accepted: true } {
    // An unknown app is refused like a bad signature: the caller learns nothing about names.
    const exists = appNameSchema.safeParse(app).success && this.apps.get(app) !== undefined;
    const expiresAt = verifyWebhook(
      exists ? this.hooks.get(app) : undefined,
      call.timestamp,
      call.signature,
      call.body,
    );
    if (!this.hooks.remember(call.signature!, expiresAt)) throw new WebhookReplayError();
    const body = parseWebhookBody(call.body);
    const busy = this.#ctx.busyWith(app);
    if (busy) throw new AppBusyError(app, busy);
    this.deploy({ app, source: { kind: 'url', url: body.url, sha256: body.sha256 } }).catch((err) => {
      this.#ctx.logger.warn({ app, code: (err as { code?: string }).code }, 'webhook deploy failed');
      if (!(err instanceof DeployFailedError))
        this.#ctx.record(app, 'deploy-failed', null, `webhook: ${(err as Error).message}`);
    });
    return { app, accepted: true };
  }

  // --- logs --------------------------------------------------------------------------------------

  /** The last `n` lines of an app's log. */
  async tail(app: string, n: number): Promise<string[]> {
    this.#ctx.row(app);
    return this.#backend.tail(app, this.paths(app).log, n);
  }

  /** Streams an app's new log lines until `signal` aborts. */
  async follow(app: string, onLines: (lines: string[]) => Promise<void>, signal: AbortSignal): Promise<void> {
    this.#ctx.row(app);
    await this.#backend.follow(app, this.paths(app).log, onLines, signal);
  }

  // --- what the backend reports ------------------------------------------------------------------

  /** Writes a process change the backend saw (crash, restart, exit) to the database and the log. */
  #onBackendChange(app: string, state: RunState, why: RunChange, detail: string | undefined): void {
    const row = this.#ctx.stopping ? undefined : this.apps.get(app);
    if (!row) return;
    this.apps.update(app, {
      status: state.status,
      pid: state.pid,
      pidStart: state.pidStart,
      startedAt: state.startedAt,
      restarts: state.restarts,
      ...(why === 'failed' || (why === 'exit' && state.status !== 'running')
        ? { desired: 'stopped' as const }
        : {}),
    });
    const release = row.release;
    // Operator-driven starts and stops are recorded by their verbs; the supervisor's own by kind.
    if (why === 'crash' || why === 'failed') this.#ctx.record(app, why, release, detail);
    else if (why === 'restart' || why === 'exit')
      this.#ctx.record(app, why === 'exit' ? 'stop' : 'restart', release, detail);
    else this.#ctx.emitChange(app, why, detail ?? null);
  }
}

/** The kernel redirects the database implies: each app meant to run on a live private port. */
function liveRoutes(rows: AppRow[]): Map<string, Redirect> {
  const routes = new Map<string, Redirect>();
  for (const r of rows)
    if (r.desired === 'running' && r.spec.port && r.livePort)
      routes.set(r.name, { publicPort: r.spec.port, port: r.livePort });
  return routes;
}
