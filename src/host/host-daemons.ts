/**
 * The host-daemon runner (issue 18): installs a Debian package and runs its daemon (Caddy, Redis,
 * PostgreSQL) under systemd when systemd is PID 1, else under the agent's own supervisor (the
 * `process` backend of workloads: restarts with backoff, a crash-loop limit, and adoption by pid
 * after an agent restart, as for apps). A daemon that does not become ready is stopped again, and
 * the packages its install added are removed: a failed install leaves the node as it was.
 */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../logging/index.ts';
import type { Db } from '../store/index.ts';
import { lookupUser } from '../workloads/app-users.ts';
import { APP_LOG_CHECK_MS } from '../workloads/constants.ts';
import {
  type Backend,
  createProcessBackend,
  type LaunchSpec,
  type RunChange,
  type RunState,
} from '../workloads/index.ts';
import { aptInstall, aptRemove } from './apt.ts';
import { DAEMON_READY_POLL_MS, DAEMON_READY_TIMEOUT_MS } from './constants.ts';
import { DaemonRepo } from './daemon-repo.ts';
import type { DaemonSpec, DaemonStatus } from './daemon-spec.ts';
import { systemdIsInit, systemdStart, systemdStatus, systemdStop } from './daemon-systemd.ts';
import { HostDaemonError } from './errors.ts';

const execFileP = promisify(execFile);

/** Options of the runner. */
export interface HostDaemonsInit {
  /** Where the daemons' stdout and stderr go when the agent supervises them (DATA/host/logs). */
  logDir: string;
  /** Supervise with systemd; default: when systemd is PID 1. */
  systemd?: boolean;
  /** How long a daemon may take to become ready. */
  readyTimeoutMs?: number;
  /** Tunables of the agent's supervisor (tests shorten the backoff). */
  processBackend?: Parameters<typeof createProcessBackend>[0];
}

/** Events of the runner. */
export interface HostDaemonsEvents {
  /** A daemon the agent supervises started, restarted, crashed or stopped. */
  change: [name: string, state: RunState, why: RunChange];
}

/** Answers whether a daemon serves yet (Caddy's admin socket, `redis-cli ping`, `pg_isready`). */
export type ReadyProbe = () => Promise<boolean>;

/** Installs packages and runs host daemons. */
export class HostDaemons extends EventEmitter<HostDaemonsEvents> {
  readonly repo: DaemonRepo;
  readonly systemd: boolean;
  readonly #init: HostDaemonsInit;
  readonly #logger: Logger;
  readonly #backend: Backend;
  #tick: NodeJS.Timeout | undefined;

  /** Builds the runner; no I/O until `start()`. */
  constructor(init: HostDaemonsInit, components: { db: Db; logger: Logger }) {
    super();
    this.#init = init;
    this.#logger = components.logger;
    this.repo = new DaemonRepo(components.db);
    this.systemd = init.systemd ?? systemdIsInit();
    this.#backend = createProcessBackend(init.processBackend ?? {}, { logger: components.logger });
    this.#backend.on('change', (name, state, why) => {
      if (this.repo.get(name)) this.repo.setProcess(name, state);
      this.emit('change', name, state, why);
    });
  }

  /** Takes the daemons the agent supervises back over: adopts live ones, restarts vanished ones. */
  async start(): Promise<void> {
    this.#backend.start();
    // Log rotation of the daemons the agent supervises, as for apps.
    this.#tick = setInterval(() => void this.#backend.tick?.(), APP_LOG_CHECK_MS);
    this.#tick.unref();
    if (this.systemd) return;
    for (const row of this.repo.list()) {
      try {
        await this.#prepare(row.spec);
        await this.#backend.adopt(row.name, {
          spec: await this.#launchSpec(row.spec),
          pid: row.pid,
          pidStart: row.pidStart,
          startedAt: row.startedAt,
          restarts: row.restarts,
          wanted: row.wanted,
        });
      } catch (err) {
        this.#logger.error({ daemon: row.name, err }, 'cannot take host daemon back over');
      }
    }
  }

  /** Stops supervising; the daemons keep running (like apps) and are adopted on the next start. */
  async stop(): Promise<void> {
    clearInterval(this.#tick);
    await this.#backend.close();
  }

  /** Installs packages; returns those this call added. On failure nothing stays added. */
  install(packages: string[], signal?: AbortSignal): Promise<string[]> {
    return aptInstall(packages, signal);
  }

  /** Removes packages an install added (`purge`: their configuration and data too). */
  uninstall(packages: string[], purge: boolean): Promise<void> {
    return aptRemove(packages, purge);
  }

  /**
   * Installs `packages` and runs `spec` until `ready`. When either fails, the daemon is forgotten
   * and the packages this call added are purged again, so the node is as it was; the error says
   * why in one line. Returns the packages it added (for a later `rm` to remove only those).
   */
  async provision(
    packages: string[],
    spec: DaemonSpec,
    ready: ReadyProbe,
    signal?: AbortSignal,
  ): Promise<string[]> {
    const added = await this.install(packages, signal);
    try {
      await this.run(spec, ready);
    } catch (err) {
      await this.forget(spec.name).catch(() => {});
      await this.uninstall(added, true).catch((e) =>
        this.#logger.warn({ err: e, packages: added }, 'cannot remove the packages of a failed install'),
      );
      throw err;
    }
    return added;
  }

  /**
   * Runs a daemon and waits until `ready` answers. When it does not within the timeout, it is
   * stopped again and the error carries the last lines of its log.
   */
  async run(spec: DaemonSpec, ready: ReadyProbe): Promise<DaemonStatus> {
    this.repo.want(spec, true);
    // The daemon's folders (Caddy's admin socket's): the package's unit does not make ours.
    await this.#prepare(spec);
    if (this.systemd) await systemdStart(spec);
    else {
      await this.#stopSysv(spec);
      await this.#backend.launch(await this.#launchSpec(spec));
    }
    const deadline = Date.now() + (this.#init.readyTimeoutMs ?? DAEMON_READY_TIMEOUT_MS);
    for (;;) {
      if (await ready().catch(() => false)) return this.status(spec.name);
      const s = await this.status(spec.name);
      if (s.state === 'failed' || Date.now() > deadline) {
        const tail = await this.tail(spec.name, 3).catch(() => []);
        await this.halt(spec.name);
        const why = s.state === 'failed' ? 'it keeps exiting' : 'it did not become ready in time';
        throw new HostDaemonError(
          'DAEMON_START_FAILED',
          `${spec.name} did not start: ${why}${tail.length ? `; its log says: ${tail.join(' | ').slice(0, 400)}` : ''}`,
        );
      }
      await new Promise((r) => setTimeout(r, DAEMON_READY_POLL_MS));
    }
  }

  /** Stops a daemon and keeps it stopped across agent restarts. */
  async halt(name: string): Promise<void> {
    const row = this.repo.get(name);
    if (!row) return;
    this.repo.setWanted(name, false);
    if (this.systemd) await systemdStop(row.spec, false);
    else await this.#backend.halt(name);
  }

  /** Stops a daemon and forgets it. */
  async forget(name: string): Promise<void> {
    const row = this.repo.get(name);
    if (!row) return;
    if (this.systemd) await systemdStop(row.spec, true);
    else await this.#backend.forget(name);
    this.repo.delete(name);
  }

  /** A daemon's state; `stopped` for one the runner does not know. */
  async status(name: string): Promise<DaemonStatus> {
    const row = this.repo.get(name);
    if (row && this.systemd) return systemdStatus(row.spec);
    const s = this.#backend.state(name);
    return {
      name,
      state: s?.status ?? 'stopped',
      pid: s?.pid ?? null,
      supervisor: 'agent',
      restarts: s?.restarts ?? 0,
    };
  }

  /** The last lines of a daemon's log (its log file under the agent, the journal under systemd). */
  async tail(name: string, n: number): Promise<string[]> {
    const row = this.repo.get(name);
    if (this.systemd && row) {
      const { stdout } = await execFileP('journalctl', [
        '-u',
        row.spec.unit,
        '-n',
        String(n),
        '-o',
        'cat',
        '--no-pager',
      ]);
      return stdout.split('\n').filter(Boolean);
    }
    return this.#backend.tail(name, this.logFile(name), n);
  }

  /** The log file of a daemon the agent supervises. */
  logFile(name: string): string {
    return join(this.#init.logDir, `${name}.log`);
  }

  async #launchSpec(spec: DaemonSpec): Promise<LaunchSpec> {
    const user = await lookupUser(spec.user);
    if (!user)
      throw new HostDaemonError(
        'DAEMON_USER_MISSING',
        `user '${spec.user}' of ${spec.name} does not exist; reinstall the package`,
      );
    await mkdir(this.#init.logDir, { recursive: true, mode: 0o700 });
    // setpriv switches to the package's user with its supplementary groups (PostgreSQL reads its
    // TLS key through ssl-cert; apps, by contrast, drop theirs) and keeps only the capabilities
    // named (Caddy: NET_BIND_SERVICE for 80/443), dropping every other from the bounding set.
    const caps = (spec.capabilities ?? []).map((c) => `+${c.toLowerCase()}`).join(',');
    const keep = caps ? [`--inh-caps=-all,${caps}`, `--ambient-caps=-all,${caps}`] : [];
    const drop = `--bounding-set=-all${caps ? `,${caps}` : ''}`;
    const ids = [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups'];
    return {
      app: spec.name,
      release: spec.name,
      cwd: spec.cwd,
      cmd: ['setpriv', ...ids, ...keep, drop, '--', spec.cmd].join(' '),
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
        HOME: spec.cwd,
        USER: user.name,
        ...spec.env,
      },
      restart: 'always',
      logFile: this.logFile(spec.name),
      appDir: spec.cwd,
    };
  }

  /**
   * Makes the daemon's folders: those a unit's RuntimeDirectory= would when the agent supervises
   * it (tmpfs /run is empty after a reboot), and under systemd those the package's unit does not
   * make (Caddy's admin socket folder in DATA/edge).
   */
  async #prepare(spec: DaemonSpec): Promise<void> {
    for (const d of spec.dirs ?? []) {
      if (d.unitMakes && this.systemd) continue;
      const user = await lookupUser(d.owner);
      const group = d.group ? await lookupUser(d.group) : user;
      await mkdir(d.path, { recursive: true, mode: d.mode });
      if (user && group) await chown(d.path, user.uid, group.gid);
      await chmod(d.path, d.mode);
    }
  }

  /** A package's SysV script may have started the daemon on install: ours is the only one. */
  async #stopSysv(spec: DaemonSpec): Promise<void> {
    const script = spec.sysv && `/etc/init.d/${spec.sysv}`;
    if (script && existsSync(script)) await execFileP(script, ['stop'], { timeout: 60_000 }).catch(() => {});
  }
}
