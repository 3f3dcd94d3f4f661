/**
 * `plexus service install|ls|rm` (issue 18): Redis, PostgreSQL and Node.js from the host's apt
 * sources, their daemons run by the host-daemon runner and enabled (they come back after an agent
 * restart or a reboot). A failed install leaves the node as it was; `rm` removes only the packages
 * the install added, and keeps their data unless `purge`.
 */
import type { Logger } from '../logging/index.ts';
import type { Db } from '../store/index.ts';
import { AppNotRoutableError, ServiceStateError, UnknownServiceError } from './errors.ts';
import type { HostDaemons } from './host-daemons.ts';
import { grantDatabase, grantNames } from './postgres-grants.ts';
import { SERVICES, type ServiceDef } from './service-catalog.ts';
import { ServiceRepo } from './service-repo.ts';

/** What `service ls` shows of one service. */
export interface ServiceView {
  name: string;
  version: string | null;
  state: 'running' | 'stopped' | 'failed' | 'crashloop' | 'unknown' | 'installed' | 'missing';
  supervisor: 'systemd' | 'agent' | null;
  /** Packages the install added (removed by `service rm`). */
  added: string[];
  /** Apps with a role and database (PostgreSQL). */
  apps: string[];
}

/** What the services need from the rest of the agent. */
export interface ServicesComponents {
  db: Db;
  logger: Logger;
  daemons: HostDaemons;
  /** True when the app exists on this node. */
  appExists(app: string): boolean;
  /** Sets (encrypted) env vars of an app; true when it runs and must restart to see them. */
  setAppEnv(app: string, vars: Record<string, string>): { pendingRestart: boolean };
}

/** The services of this node. */
export class Services {
  readonly repo: ServiceRepo;
  readonly #c: ServicesComponents;

  /** Builds the services; no I/O. */
  constructor(components: ServicesComponents) {
    this.#c = components;
    this.repo = new ServiceRepo(components.db);
  }

  /** The catalog entry, or UNKNOWN_SERVICE. */
  def(name: string): ServiceDef {
    const d = SERVICES.get(name);
    if (!d) throw new UnknownServiceError(name, [...SERVICES.keys()]);
    return d;
  }

  /** Installs (or starts again) a service; with `forApp`, a PostgreSQL role and database for it. */
  async install(
    name: string,
    opts: { version?: string; forApp?: string; signal?: AbortSignal },
  ): Promise<
    ServiceView & {
      granted?: { app: string; role: string; database: string; env: string[]; pendingRestart: boolean };
    }
  > {
    const def = this.def(name);
    if (opts.forApp !== undefined) {
      if (name !== 'postgresql')
        throw new ServiceStateError(
          'SERVICE_NO_DATABASES',
          `--for APP makes a database: only postgresql has them`,
        );
      if (!this.#c.appExists(opts.forApp))
        throw new AppNotRoutableError(
          'UNKNOWN_APP',
          `no app '${opts.forApp}' on this node; see 'plexus apps'`,
        );
    }
    const packages = await def.packages(opts.version);
    const known = this.repo.get(name);
    if (!known) {
      const added = def.daemon
        ? await this.#c.daemons.provision(packages, def.daemon(), def.ready!, opts.signal)
        : await this.#c.daemons.install(packages, opts.signal);
      this.repo.add({ name, packages, added });
      this.#c.logger.info({ service: name, added }, 'service installed');
    } else if (def.daemon && (await this.#c.daemons.status(name)).state !== 'running') {
      await this.#c.daemons.run(def.daemon(), def.ready!);
    }
    const view = await this.#view(def);
    if (opts.forApp === undefined) return view;
    const env = await grantDatabase(opts.forApp);
    const { role, db } = grantNames(opts.forApp);
    const { pendingRestart } = this.#c.setAppEnv(opts.forApp, env);
    this.repo.grant({ service: name, app: opts.forApp, role, db });
    this.#c.logger.info({ service: name, app: opts.forApp, role }, 'database granted to app');
    return {
      ...(await this.#view(def)),
      granted: { app: opts.forApp, role, database: db, env: Object.keys(env), pendingRestart },
    };
  }

  /** Every service plexus installed, with version and state. */
  async list(): Promise<ServiceView[]> {
    return Promise.all(this.repo.list().map((r) => this.#view(this.def(r.name))));
  }

  /**
   * Stops a service and removes the packages its install added. Their data stays unless `purge`;
   * packages the host had before stay in any case.
   */
  async remove(
    name: string,
    purge: boolean,
  ): Promise<{ name: string; removed: string[]; dataKept: boolean }> {
    this.def(name);
    const row = this.repo.get(name);
    if (!row)
      throw new ServiceStateError(
        'SERVICE_NOT_INSTALLED',
        `${name} was not installed with plexus service install on this node`,
      );
    await this.#c.daemons.forget(name);
    await this.#c.daemons.uninstall(row.added, purge);
    this.repo.delete(name);
    this.#c.logger.info({ service: name, removed: row.added, purge }, 'service removed');
    return { name, removed: row.added, dataKept: !purge || row.added.length === 0 };
  }

  async #view(def: ServiceDef): Promise<ServiceView> {
    const row = this.repo.get(def.name);
    const version = (await def.version()) ?? null;
    const status = def.daemon && row ? await this.#c.daemons.status(def.name) : undefined;
    return {
      name: def.name,
      version,
      state: status ? status.state : version ? 'installed' : 'missing',
      supervisor: status?.supervisor ?? null,
      added: row?.added ?? [],
      apps: this.repo.grants(def.name).map((g) => g.app),
    };
  }
}
