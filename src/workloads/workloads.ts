/**
 * The workload manager: deploys, health gates and rolls back releases, starts and stops apps
 * through a backend, keeps the database in step with what runs, and tells listeners (telemetry)
 * about every change. One operation per app at a time.
 */
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { z } from 'zod';
import type { Logger } from '../logging/index.ts';
import type { Db } from '../store/index.ts';
import { AppRepo, type AppRow, type AppStatus } from './app-repo.ts';
import type { Backend, LaunchSpec, RunChange, RunState } from './backend.ts';
import { APP_LOG_CHECK_MS, STOP_GRACE_MS } from './constants.ts';
import { type BundleSource, type DeployProgress, stageBundle } from './deploy-source.ts';
import { EnvRepo } from './env-repo.ts';
import {
  AppBusyError,
  DeployFailedError,
  InvalidSpecError,
  PortInUseError,
  UnknownAppError,
  UnknownReleaseError,
  WebhookReplayError,
} from './errors.ts';
import { type AppEvent, type AppEventKind, EventRepo } from './event-repo.ts';
import type { ExtractLimits } from './extract.ts';
import { HookRepo } from './hook-repo.ts';
import { buildLaunchSpec } from './launch-spec.ts';
import { checkCommand, checkPortFree } from './preflight.ts';
import { isSameProcess, killGroup, ProcSampler } from './proc.ts';
import { ReleaseRepo, type ReleaseRow } from './release-repo.ts';
import { ReleaseSwitch } from './release-switch.ts';
import {
  type AppPaths,
  appPaths,
  clearTmp,
  commitRelease,
  currentRelease,
  ensureAppDirs,
  newReleaseId,
  releaseDir,
  removeAppDir,
  removeReleases,
  switchCurrent,
} from './releases.ts';
import { SecretBox } from './secrets.ts';
import { appNameSchema, type RunSpec, type RunSpecInput, resolveSpec } from './spec.ts';
import { verifyWebhook, webhookBodySchema } from './webhook.ts';

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
  maxBundleBytes?: number;
  /** A download that sends nothing for this long fails (default 30 s). */
  downloadIdleTimeoutMs?: number;
  /** Variables copied from the agent's environment into every app's. */
  inheritEnv?: string[];
}

/** Dependencies of the manager. */
export interface WorkloadsComponents {
  db: Db;
  logger: Logger;
  backend: Backend;
  /** The 32-byte master key for secrets. */
  masterKey: Buffer;
}

/** The workload manager. */
export class Workloads extends EventEmitter<WorkloadsEvents> {
  readonly apps: AppRepo;
  readonly releases: ReleaseRepo;
  readonly env: EnvRepo;
  readonly hooks: HookRepo;
  readonly events: EventRepo;
  readonly #backend: Backend;
  readonly #logger: Logger;
  readonly #init: WorkloadsInit;
  readonly #busy = new Map<string, string>();
  readonly #sampler = new ProcSampler();
  readonly #switch: ReleaseSwitch;
  #tick: NodeJS.Timeout | undefined;
  #stopping = false;

  constructor(init: WorkloadsInit, components: WorkloadsComponents) {
    super();
    this.#init = init;
    this.#logger = components.logger;
    this.#backend = components.backend;
    const box = new SecretBox(components.masterKey);
    this.apps = new AppRepo(components.db);
    this.releases = new ReleaseRepo(components.db);
    this.env = new EnvRepo(components.db, box);
    this.hooks = new HookRepo(components.db, box);
    this.events = new EventRepo(components.db);
    this.#backend.on('change', (app, state, why, detail) => this.#onBackendChange(app, state, why, detail));
    this.#switch = new ReleaseSwitch({
      apps: this.apps,
      releases: this.releases,
      env: this.env,
      backend: this.#backend,
      logger: this.#logger,
      healthTimeoutMs: init.healthTimeoutMs,
      paths: (app) => this.paths(app),
      launchSpec: (app, rel, extra) => this.#launchSpec(app, rel, extra),
      record: (app, kind, release, detail) => this.#record(app, kind, release, detail),
      emitChange: (app, kind, detail) => this.#emitChange(app, kind, detail),
      settled: (app) => this.#busy.delete(app),
      info: (app) => this.get(app),
    });
  }

  /** Paths of an app. */
  paths(app: string): AppPaths {
    return appPaths(this.#init.appsDir, app);
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  /** Takes every app back over: re-adopts live processes, restarts those that vanished. */
  async start(): Promise<void> {
    for (const row of this.apps.list()) {
      try {
        await this.#recover(row);
      } catch (err) {
        this.#logger.error({ app: row.name, err }, 'cannot recover app');
      }
    }
    this.#tick = setInterval(() => void this.#backend.tick?.(), APP_LOG_CHECK_MS);
    this.#tick.unref();
  }

  async #recover(row: AppRow): Promise<void> {
    const p = this.paths(row.name);
    ensureAppDirs(p);
    await clearTmp(p); // leftovers of a deploy the agent died in
    const known = new Set(this.releases.list(row.name).map((r) => r.id));
    for (const dir of readdirSync(p.releases)) if (!known.has(dir)) await removeReleases(p, [dir]);
    if (!row.release) {
      if (row.status === 'deploying') this.apps.update(row.name, { status: 'failed' });
      return;
    }
    const rel = this.releases.get(row.name, row.release);
    if (!rel) return;
    let pid = row.pid;
    if ((await currentRelease(p)) !== row.release) {
      // The agent died in the middle of a switch: the database is the truth. The process it
      // recorded last may be the unconfirmed new release: stop it so the port is free.
      if (pid && isSameProcess(pid, row.pidStart))
        await killGroup(pid, this.#init.stopGraceMs ?? STOP_GRACE_MS);
      await switchCurrent(p, row.release);
      pid = null;
    }
    const spec = this.#launchSpec(row.name, rel);
    const how = await this.#backend.adopt(row.name, {
      spec,
      pid,
      pidStart: pid ? row.pidStart : null,
      startedAt: row.startedAt,
      restarts: row.restarts,
      wanted: row.desired === 'running',
    });
    // A restart is recorded by the backend's own change event; an adoption is only logged.
    if (how === 'adopt') this.#logger.info({ app: row.name, pid: row.pid }, 're-adopted app');
  }

  /** Stops supervising. Apps keep running, so an agent restart or upgrade does not stop them. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#tick) clearInterval(this.#tick);
    await this.#backend.close();
  }

  // --- reading -----------------------------------------------------------------------------------

  /** Every app with status, pid, restarts, release, port, uptime, CPU% and memory. */
  list(): AppInfo[] {
    const rows = this.apps.list();
    const infos = rows.map((r) => this.#info(r));
    this.#sampler.retain(new Set(infos.map((i) => i.pid).filter((p): p is number => p !== null)));
    return infos;
  }

  /** One app's info. */
  get(app: string): AppInfo {
    return this.#info(this.#row(app));
  }

  /** Apps that declare a port, by name: the services a node exposes in the mesh. */
  ports(): { name: string; port: number }[] {
    return this.apps
      .list()
      .filter((r) => r.spec.port !== undefined)
      .map((r) => ({ name: r.name, port: r.spec.port! }));
  }

  #info(r: AppRow): AppInfo {
    const live = this.#backend.state(r.name);
    const pid = live ? live.pid : r.pid;
    const status: AppStatus =
      this.#busy.get(r.name) === 'deploying' ? 'deploying' : (live?.status ?? r.status);
    const sample = pid ? this.#sampler.sample(pid) : { cpuPct: null, memMb: null };
    const startedAt = live?.startedAt ?? r.startedAt;
    return {
      name: r.name,
      status,
      pid,
      release: r.release,
      restarts: live?.restarts ?? r.restarts,
      uptimeS: pid && startedAt ? Math.max(0, Math.round((Date.now() - startedAt) / 1000)) : null,
      cpuPct: sample.cpuPct,
      memMb: sample.memMb,
      port: r.spec.port ?? null,
    };
  }

  #row(app: string): AppRow {
    if (!appNameSchema.safeParse(app).success) throw new UnknownAppError(app.slice(0, 64));
    const row = this.apps.get(app);
    if (!row) throw new UnknownAppError(app);
    return row;
  }

  // --- deploy and rollback -----------------------------------------------------------------------

  /** Deploys a bundle as a new release, health gated; on failure the previous release is put back. */
  async deploy(req: DeployRequest): Promise<DeployResult> {
    const name = appNameSchema.safeParse(req.app);
    if (!name.success)
      throw new InvalidSpecError(
        'BAD_APP_NAME',
        `bad app name '${req.app.slice(0, 64)}': ${name.error.issues[0].message}`,
      );
    const app = req.app;
    return this.#exclusive(app, 'deploying', async () => {
      const started = Date.now();
      const prev = this.apps.get(app);
      const p = this.paths(app);
      ensureAppDirs(p);
      let staged: Awaited<ReturnType<typeof stageBundle>> | undefined;
      try {
        staged = await stageBundle(p, req.source, {
          maxBundleBytes: this.#init.maxBundleBytes,
          idleTimeoutMs: this.#init.downloadIdleTimeoutMs,
          limits: this.#init.extractLimits,
          signal: req.signal,
          onProgress: req.onProgress,
        });
        const prevRelease = prev?.release ? this.releases.get(app, prev.release) : undefined;
        const base = prevRelease?.spec ?? prev?.spec;
        // The previous bundle's env is not inherited: a key removed from plexus.yaml is gone.
        const spec = resolveSpec(req.flags, staged.manifest, base && { ...base, env: undefined });
        const env = { ...this.#appEnv(app, prev !== undefined), ...req.env };
        checkCommand(spec.cmd, staged.dir, env.PATH ?? spec.env.PATH ?? process.env.PATH);
        await this.#checkPort(app, spec, prev);
        const id = newReleaseId();
        await commitRelease(p, staged.dir, id);
        const row: ReleaseRow = {
          app,
          id,
          createdAt: Date.now(),
          source: staged.source,
          sha256: staged.transfer.sha256,
          bytes: staged.transfer.bytes,
          spec,
          status: 'ready',
        };
        if (!prev)
          this.apps.insert({ name: app, spec, desired: 'running', status: 'deploying', tenant: req.tenant });
        this.releases.insert(row);
        return await this.#switch.switchTo(app, row, prevRelease, {
          kind: 'deploy',
          env: req.env,
          onProgress: req.onProgress,
          started,
        });
      } catch (err) {
        if (!prev && !this.apps.get(app)) await removeAppDir(p).catch(() => {});
        // A first deploy that broke after its row was written: never leave it 'deploying'.
        else if (!prev && !this.apps.get(app)?.release)
          this.apps.update(app, { status: 'failed', desired: 'stopped' });
        throw err;
      } finally {
        if (staged) await rm(staged.staging, { recursive: true, force: true }).catch(() => {});
      }
    });
  }

  /** Puts an earlier release back (the one before the current, or `to`), health gated too. */
  async rollback(app: string, to?: string, onProgress?: (p: DeployProgress) => void): Promise<DeployResult> {
    const row = this.#row(app);
    return this.#exclusive(app, 'deploying', async () => {
      const started = Date.now();
      const all = this.releases.list(app);
      const current = row.release ? all.find((r) => r.id === row.release) : undefined;
      let target: ReleaseRow | undefined;
      if (to) {
        target = all.find((r) => r.id === to);
        if (!target || target.status === 'pruned' || target.status === 'failed')
          throw new UnknownReleaseError(app, to);
      } else {
        target = all.find(
          (r) =>
            r.id !== row.release && r.status === 'ready' && (!current || r.createdAt <= current.createdAt),
        );
        if (!target) {
          throw new InvalidSpecError(
            'NO_PREVIOUS_RELEASE',
            `app '${app}' has no earlier release to roll back to; see 'plexus releases ${app}'`,
          );
        }
      }
      if (target.id === row.release) {
        throw new InvalidSpecError(
          'ALREADY_CURRENT',
          `release ${target.id} is already the current release of '${app}'`,
        );
      }
      if (!existsSync(releaseDir(this.paths(app), target.id))) throw new UnknownReleaseError(app, target.id);
      return this.#switch.switchTo(app, target, current, { kind: 'rollback', onProgress, started });
    });
  }

  async #checkPort(app: string, spec: RunSpec, prev: AppRow | undefined): Promise<void> {
    if (!spec.port) return;
    const other = this.apps.list().find((r) => r.name !== app && r.spec.port === spec.port);
    if (other) throw new PortInUseError(spec.port, other.name);
    const ours = prev?.spec.port === spec.port && this.#backend.state(app)?.pid;
    if (!ours) await checkPortFree(spec.port);
  }

  // --- start, stop, remove -----------------------------------------------------------------------

  /** Starts a stopped app on its current release (picking up env changes). */
  async startApp(app: string): Promise<AppInfo> {
    const row = this.#row(app);
    return this.#exclusive(app, 'starting', async () => {
      const rel = this.#currentRow(row);
      const state = this.#backend.state(app);
      if (state?.pid && (state.status === 'running' || state.status === 'crashloop')) return this.get(app);
      if (rel.spec.port) await this.#checkPort(app, rel.spec, undefined);
      this.apps.update(app, { desired: 'running' });
      await this.#backend.launch(this.#launchSpec(app, rel));
      this.#record(app, 'start', rel.id);
      return this.get(app);
    });
  }

  /** Stops an app: SIGTERM, then SIGKILL after the grace period. It stays stopped across agent restarts. */
  async stopApp(app: string): Promise<AppInfo> {
    const row = this.#row(app);
    return this.#exclusive(app, 'stopping', async () => {
      this.apps.update(app, { desired: 'stopped' });
      await this.#backend.halt(app, this.#init.stopGraceMs ?? STOP_GRACE_MS);
      this.#record(app, 'stop', row.release);
      return this.get(app);
    });
  }

  /** Stops and starts an app (new env applies). */
  async restartApp(app: string): Promise<AppInfo> {
    const row = this.#row(app);
    return this.#exclusive(app, 'restarting', async () => {
      const rel = this.#currentRow(row);
      this.apps.update(app, { desired: 'running', restarts: 0 });
      await this.#backend.halt(app, this.#init.stopGraceMs ?? STOP_GRACE_MS);
      await this.#backend.launch(this.#launchSpec(app, rel));
      this.#record(app, 'restart', rel.id, 'by operator');
      return this.get(app);
    });
  }

  /** Stops an app and deletes it: releases, env, hook secret and files. Its app log goes too. */
  async removeApp(app: string): Promise<{ app: string; removed: true }> {
    this.#row(app);
    return this.#exclusive(app, 'removing', async () => {
      await this.#backend.forget(app);
      this.apps.delete(app);
      await removeAppDir(this.paths(app));
      this.#record(app, 'remove', null);
      this.emit('change', { app, kind: 'remove', detail: null, info: undefined });
      return { app, removed: true as const };
    });
  }

  #currentRow(row: AppRow): ReleaseRow {
    const rel = row.release ? this.releases.get(row.name, row.release) : undefined;
    if (!rel)
      throw new InvalidSpecError('NO_RELEASE', `app '${row.name}' has no working release; deploy one first`);
    return rel;
  }

  // --- env ---------------------------------------------------------------------------------------

  /** Sets env vars (encrypted). They apply on the next start or restart. */
  setEnv(
    app: string,
    vars: Record<string, string>,
  ): { app: string; names: string[]; pendingRestart: boolean } {
    this.#row(app);
    this.env.set(app, vars);
    return this.#envChanged(app, `set ${Object.keys(vars).sort().join(', ')}`, Object.keys(vars));
  }

  /** Removes env vars; they are gone from the app's environment after its next (re)start. */
  unsetEnv(app: string, names: string[]): { app: string; names: string[]; pendingRestart: boolean } {
    this.#row(app);
    const removed = this.env.unset(app, names);
    return this.#envChanged(app, `unset ${removed.join(', ') || '(nothing)'}`, removed);
  }

  #envChanged(app: string, what: string, names: string[]) {
    this.apps.update(app, { envChangedAt: Date.now() });
    // Only names go in the event log, never values.
    this.#record(app, 'env', null, what);
    const running = !!this.#backend.state(app)?.pid;
    return { app, names, pendingRestart: running && names.length > 0 };
  }

  /** Env var names, with values when `reveal` (admins only; the action checks the role). */
  listEnv(app: string, reveal: boolean): { name: string; updatedAt: number; value?: string }[] {
    const row = this.#row(app);
    const values = reveal ? this.env.reveal(app) : undefined;
    return this.env.names(row.name).map((v) => (values ? { ...v, value: values[v.name] } : v));
  }

  #appEnv(app: string, exists: boolean): Record<string, string> {
    return exists ? this.env.reveal(app) : {};
  }

  #launchSpec(app: string, rel: ReleaseRow, extraEnv: Record<string, string> = {}): LaunchSpec {
    return buildLaunchSpec(
      app,
      rel,
      this.paths(app),
      { ...this.env.reveal(app), ...extraEnv },
      this.#init.inheritEnv,
    );
  }

  // --- webhooks --------------------------------------------------------------------------------

  /** The app's webhook secret, made on first use; `rotate` replaces it (the old one stops working). */
  hookSecret(app: string, rotate: boolean): { app: string; secret: string; created: boolean } {
    this.#row(app);
    const r = this.hooks.ensure(app, rotate);
    if (r.created)
      this.#record(app, 'env', null, rotate ? 'webhook secret rotated' : 'webhook secret created');
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
    let body: z.infer<typeof webhookBodySchema>;
    try {
      body = webhookBodySchema.parse(JSON.parse(call.body.toString('utf8')));
    } catch {
      throw new InvalidSpecError(
        'BAD_WEBHOOK_BODY',
        'webhook body must be JSON {"url": "...", "sha256": "..."}',
      );
    }
    if (this.#busy.has(app)) throw new AppBusyError(app, this.#busy.get(app)!);
    this.deploy({ app, source: { kind: 'url', url: body.url, sha256: body.sha256 } }).catch((err) => {
      this.#logger.warn({ app, code: (err as { code?: string }).code }, 'webhook deploy failed');
      if (!(err instanceof DeployFailedError))
        this.#record(app, 'deploy-failed', null, `webhook: ${(err as Error).message}`);
    });
    return { app, accepted: true };
  }

  // --- logs --------------------------------------------------------------------------------------

  /** The last `n` lines of an app's log. */
  async tail(app: string, n: number): Promise<string[]> {
    this.#row(app);
    return this.#backend.tail(app, this.paths(app).log, n);
  }

  /** Streams an app's new log lines until `signal` aborts. */
  async follow(app: string, onLines: (lines: string[]) => Promise<void>, signal: AbortSignal): Promise<void> {
    this.#row(app);
    await this.#backend.follow(app, this.paths(app).log, onLines, signal);
  }

  // --- internals ---------------------------------------------------------------------------------

  async #exclusive<T>(app: string, what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#stopping) throw new AppBusyError(app, 'the agent is stopping');
    const busy = this.#busy.get(app);
    if (busy) throw new AppBusyError(app, busy);
    this.#busy.set(app, what);
    try {
      return await fn();
    } finally {
      this.#busy.delete(app);
    }
  }

  #onBackendChange(app: string, state: RunState, why: RunChange, detail: string | undefined): void {
    const row = this.#stopping ? undefined : this.apps.get(app);
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
    if (why === 'crash' || why === 'failed') this.#record(app, why, release, detail);
    else if (why === 'restart' || why === 'exit')
      this.#record(app, why === 'exit' ? 'stop' : 'restart', release, detail);
    else this.#emitChange(app, why, detail ?? null);
  }

  #record(app: string, kind: AppEventKind, release: string | null, detail?: string): AppEvent {
    const ev = this.events.add(app, kind, release, detail);
    this.#logger.info({ app, event: kind, release, detail }, `app ${kind}`);
    this.#emitChange(app, kind, detail ?? null);
    return ev;
  }

  #emitChange(app: string, kind: AppEventKind | RunChange, detail: string | null): void {
    const row = this.apps.get(app);
    const info = row ? this.#info(row) : undefined;
    this.emit('change', { app, kind: kind as AppEventKind, detail, info });
  }
}
