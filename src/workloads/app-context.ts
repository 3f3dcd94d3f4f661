/**
 * What every operation on an app shares: the repositories, the backend, one lock per app, the
 * app's live view (database row merged with what the backend sees), and the event log that
 * tells listeners about each change. The manager (workloads.ts), deploys (deploy.ts), recovery
 * (recovery.ts) and the release switch (release-switch.ts) all work through one of these.
 */
import { readdirSync } from 'node:fs';
import type { Logger } from '../logging/index.ts';
import { chownTree, grantAppDirs, unpassableAncestor } from './app-files.ts';
import { AppRepo, type AppRow, type AppStatus } from './app-repo.ts';
import { type AppUser, canSwitchUsers, defaultUserName, ensureAppUser } from './app-users.ts';
import type { Backend, LaunchSpec, RunChange } from './backend.ts';
import { FIRST_UNPRIVILEGED_PORT } from './constants.ts';
import { EnvRepo } from './env-repo.ts';
import {
  AppBusyError,
  AppUserError,
  InvalidSpecError,
  PortInUseError,
  PortReservedError,
  RootNotAllowedError,
  UnknownAppError,
} from './errors.ts';
import { type AppEvent, type AppEventKind, EventRepo } from './event-repo.ts';
import { HookRepo } from './hook-repo.ts';
import { KernelRedirect } from './kernel-redirect.ts';
import { buildLaunchSpec } from './launch-spec.ts';
import { checkPortFree } from './preflight.ts';
import { freePrivatePort } from './private-port.ts';
import { ProcSampler } from './proc.ts';
import { ReleaseRepo, type ReleaseRow } from './release-repo.ts';
import { type AppPaths, appPaths, ensureAppDirs } from './releases.ts';
import { SecretBox } from './secrets.ts';
import { appNameSchema, type RunSpec } from './spec.ts';
import { TrafficRouter } from './traffic-router.ts';
import type { AppChange, AppInfo, WorkloadsComponents, WorkloadsInit } from './types.ts';

/** The state and helpers shared by every app operation of one workload manager. */
export class AppContext {
  readonly apps: AppRepo;
  readonly releases: ReleaseRepo;
  readonly env: EnvRepo;
  readonly hooks: HookRepo;
  readonly events: EventRepo;
  readonly backend: Backend;
  readonly logger: Logger;
  readonly init: WorkloadsInit;
  /** Where each app's traffic goes: the kernel redirect, then the registered switches (issue 18). */
  readonly traffic: TrafficRouter;
  /** Set once the manager stops: no new operation starts, backend changes are ignored. */
  stopping = false;
  /** The operation in progress per app (`deploying`, `stopping`…): one at a time. */
  readonly #busy = new Map<string, string>();
  readonly #sampler = new ProcSampler();
  /** The user each app runs as, set by `appUser` or `deployUser` before its processes start. */
  readonly #users = new Map<string, AppUser>();
  readonly #emit: (change: AppChange) => void;

  constructor(init: WorkloadsInit, components: WorkloadsComponents, emit: (change: AppChange) => void) {
    this.init = init;
    this.logger = components.logger;
    this.backend = components.backend;
    this.#emit = emit;
    const box = new SecretBox(components.masterKey);
    this.apps = new AppRepo(components.db);
    this.releases = new ReleaseRepo(components.db);
    this.env = new EnvRepo(components.db, box);
    this.hooks = new HookRepo(components.db, box);
    this.events = new EventRepo(components.db);
    const kernel = init.redirect ? new KernelRedirect(init.redirect) : undefined;
    this.traffic = new TrafficRouter(kernel, (app) => this.apps.get(app)?.livePort ?? undefined, this.logger);
  }

  /** Health deadline when a release sets none (read by the release switch). */
  get healthTimeoutMs(): number | undefined {
    return this.init.healthTimeoutMs;
  }

  /** Paths of an app. */
  paths(app: string): AppPaths {
    return appPaths(this.init.appsDir, app);
  }

  // --- reading -----------------------------------------------------------------------------------

  /** The app's row, or UnknownAppError (also for a name that could not be an app's). */
  row(app: string): AppRow {
    if (!appNameSchema.safeParse(app).success) throw new UnknownAppError(app.slice(0, 64));
    const row = this.apps.get(app);
    if (!row) throw new UnknownAppError(app);
    return row;
  }

  /** Every app's info; forgets CPU samples of processes that are gone. */
  list(): AppInfo[] {
    const infos = this.apps.list().map((r) => this.infoOf(r));
    this.#sampler.retain(new Set(infos.map((i) => i.pid).filter((p): p is number => p !== null)));
    return infos;
  }

  /** One app's info. */
  info(app: string): AppInfo {
    return this.infoOf(this.row(app));
  }

  /** The row merged with what the backend sees now, and a CPU/memory sample of its process. */
  infoOf(r: AppRow): AppInfo {
    const live = this.backend.state(r.name);
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

  /** The release the app runs (or last ran); refused when it has none. */
  currentRelease(row: AppRow): ReleaseRow {
    const rel = row.release ? this.releases.get(row.name, row.release) : undefined;
    if (!rel)
      throw new InvalidSpecError('NO_RELEASE', `app '${row.name}' has no working release; deploy one first`);
    return rel;
  }

  /**
   * What a process of `rel` is started with: the app's decrypted env, then `extraEnv` on top. An
   * app with a port listens on `livePort` (default: the private port its row records; null: the
   * declared port).
   */
  launchSpec(
    app: string,
    rel: ReleaseRow,
    extraEnv: Record<string, string> = {},
    livePort: number | null = this.apps.get(app)?.livePort ?? null,
  ): LaunchSpec {
    // Never as root by omission: every path that starts a process prepares its user first.
    if (canSwitchUsers() && !this.#users.has(app))
      throw new AppUserError('APP_USER_UNRESOLVED', `app '${app}' has no user prepared; try again`);
    return buildLaunchSpec(
      app,
      rel,
      this.paths(app),
      { ...this.env.reveal(app), ...extraEnv },
      this.init.inheritEnv,
      this.#users.get(app),
      this.apps.get(app)?.capabilities,
      livePort ?? undefined,
    );
  }

  // --- the app's user (issue 13) -----------------------------------------------------------------

  /** The user `app` was last prepared to run as; undefined when the agent cannot switch users. */
  userOf(app: string): AppUser | undefined {
    return this.#users.get(app);
  }

  /**
   * Prepares `row`'s app to start: resolves its user (creating its default one when missing) and
   * gives it its folders. An app from before per-app users moves to its own user here, on its
   * next (re)start, with its files and an event saying so.
   */
  async appUser(row: AppRow): Promise<AppUser | undefined> {
    if (!canSwitchUsers()) return undefined;
    const user = await this.#resolve(row.name, row.runAs ?? undefined);
    this.#moveTo(row, user);
    return user;
  }

  /**
   * The user a deploy runs its new release as: `wanted` (the deploy's `--user`), else the one the
   * app has, else its default user. Root, by name or uid, only with `allowRoot` (an admin's; the
   * action's access says so), unless the app already ran as root by an admin's choice.
   */
  async deployUser(app: string, prev: AppRow | undefined, wanted?: string, allowRoot = false) {
    if (!canSwitchUsers()) {
      if (wanted !== undefined)
        throw new AppUserError(
          'USER_SWITCH_UNAVAILABLE',
          'this agent is not root, so its apps run as its own user; leave out --user',
        );
      return undefined;
    }
    const blocked = unpassableAncestor(this.init.appsDir);
    if (blocked)
      throw new AppUserError(
        'DATA_DIR_UNREACHABLE',
        `apps run as their own users and cannot pass through ${blocked}; chmod o+x it or move the data dir`,
      );
    const user = await this.#resolve(app, wanted ?? prev?.runAs ?? undefined);
    if (user.uid === 0 && !allowRoot && (wanted !== undefined || prev?.runAs !== user.name))
      throw new RootNotAllowedError(app);
    return user;
  }

  /** Gives an existing app's files to `user` when it changes users; records it. */
  adoptUser(row: AppRow, user: AppUser | undefined): void {
    if (user) this.#moveTo(row, user);
  }

  async #resolve(app: string, name: string | undefined): Promise<AppUser> {
    if (name === 'root') return { name, uid: 0, gid: 0 };
    return ensureAppUser(app, name === undefined || name === defaultUserName(app) ? undefined : name);
  }

  #moveTo(row: AppRow, user: AppUser): void {
    const p = this.paths(row.name);
    ensureAppDirs(p);
    if (row.runAs !== user.name) {
      // Its releases were the agent's (or another user's): they become the app's, data and all.
      for (const id of readdirSync(p.releases)) chownTree(`${p.releases}/${id}`, user);
      this.apps.update(row.name, { runAs: user.name });
      const from = row.runAs === null ? "the agent's user" : `user ${row.runAs}`;
      this.record(
        row.name,
        'user',
        row.release,
        `runs as user ${user.name} (uid ${user.uid}) from now on, not ${from}; its files are now that user's, its data kept`,
      );
    }
    grantAppDirs(p, user);
    this.#users.set(row.name, user);
  }

  /** Remembers the user a new app's first release runs as (its row is written later). */
  setUser(app: string, user: AppUser | undefined): void {
    if (user) {
      grantAppDirs(this.paths(app), user);
      this.#users.set(app, user);
    }
  }

  /**
   * Refuses a port another app declares or runs on (its live private port), one of the agent's
   * own, one below 1024 unless the config allows it (its redirect would take a system service's
   * traffic), or one another process holds (our own running app may).
   */
  async checkPort(app: string, spec: RunSpec, prev: AppRow | undefined): Promise<void> {
    if (!spec.port) return;
    if (this.init.reservedPorts?.includes(spec.port)) throw new PortReservedError(spec.port, 'agent');
    if (spec.port < FIRST_UNPRIVILEGED_PORT && !this.init.lowPorts)
      throw new PortReservedError(spec.port, 'low');
    const other = this.apps
      .list()
      .find((r) => r.name !== app && (r.spec.port === spec.port || r.livePort === spec.port));
    if (other) throw new PortInUseError(spec.port, other.name);
    const ours =
      prev?.spec.port === spec.port && (this.backend.state(app)?.pid || this.traffic.holds(app, spec.port));
    if (!ours) await checkPortFree(spec.port);
  }

  /** A private port for a new release of an app: never a declared port nor one of the agent's. */
  privatePort(): Promise<number> {
    const taken = new Set(this.init.reservedPorts ?? []);
    for (const r of this.apps.list()) if (r.spec.port) taken.add(r.spec.port);
    return freePrivatePort(taken);
  }

  // --- one operation per app ---------------------------------------------------------------------

  /** Runs `fn` as the app's only operation; AppBusyError while another runs or the agent stops. */
  async exclusive<T>(app: string, what: string, fn: () => Promise<T>): Promise<T> {
    if (this.stopping) throw new AppBusyError(app, 'the agent is stopping');
    const busy = this.#busy.get(app);
    if (busy) throw new AppBusyError(app, busy);
    this.#busy.set(app, what);
    try {
      return await fn();
    } finally {
      this.#busy.delete(app);
    }
  }

  /** The operation in progress on `app`, if any. */
  busyWith(app: string): string | undefined {
    return this.#busy.get(app);
  }

  /** The operation is over (the app is no longer `deploying`), before its final events go out. */
  settled(app: string): void {
    this.#busy.delete(app);
  }

  // --- events ------------------------------------------------------------------------------------

  /** Appends to the app's event log, logs it, and tells listeners. */
  record(app: string, kind: AppEventKind, release: string | null, detail?: string): AppEvent {
    const ev = this.events.add(app, kind, release, detail);
    this.logger.info({ app, event: kind, release, detail }, `app ${kind}`);
    this.emitChange(app, kind, detail ?? null);
    return ev;
  }

  /** Tells listeners the app changed, with its info after the change. */
  emitChange(app: string, kind: AppEventKind | RunChange, detail: string | null): void {
    const row = this.apps.get(app);
    const info = row ? this.infoOf(row) : undefined;
    this.#emit({ app, kind: kind as AppEventKind, detail, info });
  }

  /** Tells listeners the app is gone. */
  emitRemoved(app: string): void {
    this.#emit({ app, kind: 'remove', detail: null, info: undefined });
  }
}
