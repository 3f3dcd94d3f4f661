/**
 * The edge (issue 18): Caddy in front of the node's apps, driven only through its admin API on a
 * root-only unix socket. It serves each app's domains over https with certificates Caddy obtains
 * and renews, routes them to the port the app's live release listens on (it is a TrafficSwitch:
 * a zero-downtime deploy asks it to move an app to a new port), re-applies its config whenever
 * Caddy restarts, and checks each domain's certificate as a client would. docs/edge.md.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../logging/index.ts';
import type { Db } from '../store/index.ts';
import type { AppUpstreams, TrafficSwitch } from '../workloads/traffic.ts';
import { adminCall, adminHasId, adminLoad } from './caddy-admin.ts';
import {
  type AppRoute,
  bootstrapConfig,
  type EdgePaths,
  type EdgeSettings,
  renderConfig,
} from './caddy-config.ts';
import { issuanceFailures } from './caddy-log.ts';
import { type CertFinding, checkCertificate } from './cert-check.ts';
import { CADDY_LOG_LINES, CERT_CHECK_MS, CERT_ERROR_MAX_CHARS, EDGE_CHECK_MS } from './constants.ts';
import type { DaemonSpec, DaemonStatus } from './daemon-spec.ts';
import { EdgeRepo } from './edge-repo.ts';
import { EdgeUnavailableError } from './errors.ts';
import type { HostDaemons } from './host-daemons.ts';

/** The Debian package of the edge. */
export const EDGE_PACKAGES = ['caddy'];

/** Options of the edge. */
export interface EdgeInit {
  /** DATA/edge: the bootstrap config, the admin socket's folder, Caddy's storage. */
  dir: string;
  /** How often Caddy's running config is checked (tests shorten it). */
  checkMs?: number;
  /** How often certificates are checked. */
  certCheckMs?: number;
}

/** What the edge uses. */
export interface EdgeComponents {
  db: Db;
  logger: Logger;
  daemons: HostDaemons;
  /** Where each app's live release listens. */
  upstreams: AppUpstreams;
}

/** What `edge status` shows. */
export interface EdgeStatus {
  installed: boolean;
  settings: EdgeSettings | null;
  daemon: DaemonStatus | null;
  /** Whether Caddy runs the agent's current config. */
  applied: boolean;
  adminSocket: string;
  /** The internal CA's root certificate (clients trust it to reach `internal` domains). */
  rootCert: string;
  domains: number;
  /** Domains whose certificate is failing or about to expire (`domain ls` says why). */
  certProblems: number;
}

/** The Caddy edge. */
export class Edge implements TrafficSwitch {
  readonly name = 'edge';
  readonly repo: EdgeRepo;
  readonly paths: EdgePaths & { bootstrap: string; rootCert: string };
  readonly #init: EdgeInit;
  readonly #c: EdgeComponents;
  /** Ports deploys switched apps to, ahead of what `upstreams` says. */
  readonly #switched = new Map<string, number>();
  #appliedId: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #timers: NodeJS.Timeout[] = [];
  #started = false;

  /** Builds the edge; no I/O until `start()`. */
  constructor(init: EdgeInit, components: EdgeComponents) {
    this.#init = init;
    this.#c = components;
    this.repo = new EdgeRepo(components.db);
    const storage = join(init.dir, 'storage');
    this.paths = {
      adminSocket: join(init.dir, 'admin', 'caddy.sock'),
      storage,
      bootstrap: join(init.dir, 'caddy.json'),
      rootCert: join(storage, 'pki', 'authorities', 'local', 'root.crt'),
    };
  }

  /**
   * Starts watching Caddy (re-applies its config after a restart) and the certificates, on a
   * node with an edge; one without has no timers (`install` starts them).
   */
  async start(): Promise<void> {
    this.#started = true;
    // The supervisor restarted Caddy: its config is the bootstrap's until the agent loads its own.
    this.#c.daemons.on('change', (name, state) => {
      if (name === 'caddy' && state.status !== 'stopped') void this.ensureApplied().catch(() => {});
    });
    if (this.repo.settings()) {
      // The agent makes DATA's entries private at each start (workloads' protectDataDir);
      // Caddy's user must still pass through DATA/edge to its config and socket.
      try {
        chmodSync(this.#init.dir, 0o711);
      } catch (err) {
        this.#c.logger.warn({ err }, 'cannot open DATA/edge to Caddy');
      }
      this.#watch();
      void this.ensureApplied().catch(() => {});
    }
  }

  /** Stops the watchers; Caddy keeps serving (it is adopted on the next start). */
  async stop(): Promise<void> {
    this.#started = false;
    this.#unwatch();
  }

  #watch(): void {
    if (!this.#started || this.#timers.length) return;
    const check = setInterval(
      () => void this.ensureApplied().catch(() => {}),
      this.#init.checkMs ?? EDGE_CHECK_MS,
    );
    const certs = setInterval(
      () => void this.checkCertificates().catch(() => {}),
      this.#init.certCheckMs ?? CERT_CHECK_MS,
    );
    check.unref();
    certs.unref();
    this.#timers = [check, certs];
  }

  #unwatch(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  /** The daemon spec of Caddy under either supervisor. */
  daemonSpec(s: EdgeSettings): DaemonSpec {
    const low = Math.min(s.httpPort, s.httpsPort) < 1024;
    const env = {
      HOME: '/var/lib/caddy',
      XDG_DATA_HOME: this.paths.storage,
      XDG_CONFIG_HOME: join(this.#init.dir, 'config'),
    };
    return {
      name: 'caddy',
      cmd: `caddy run --config ${this.paths.bootstrap}`,
      user: 'caddy',
      cwd: '/var/lib/caddy',
      env,
      ...(low ? { capabilities: ['NET_BIND_SERVICE'] } : {}),
      dirs: [
        // Caddy (its group) may create its socket here; nobody else may even enter (issue 18).
        { path: join(this.#init.dir, 'admin'), owner: 'root', group: 'caddy', mode: 0o730 },
        { path: this.paths.storage, owner: 'caddy', mode: 0o700 },
        { path: env.XDG_CONFIG_HOME, owner: 'caddy', mode: 0o700 },
      ],
      unit: 'caddy.service',
      execStart: `/usr/bin/caddy run --environ --config ${this.paths.bootstrap}`,
    };
  }

  /**
   * Installs Caddy (apt) and runs it with the agent's config; run again, it changes the ports or
   * the issuer. A failure (apt, a port taken) leaves the node as it was.
   */
  async install(s: EdgeSettings, signal?: AbortSignal): Promise<EdgeStatus> {
    return this.#serial(async () => {
      const previous = this.repo.settings();
      // Caddy's user passes through DATA/edge and reads its bootstrap config (which holds no
      // secret); the agent's umask (077) would keep it out.
      mkdirSync(this.#init.dir, { recursive: true });
      chmodSync(this.#init.dir, 0o711);
      writeFileSync(this.paths.bootstrap, `${JSON.stringify(bootstrapConfig(this.paths), null, 2)}\n`);
      chmodSync(this.paths.bootstrap, 0o644);
      const added = await this.#c.daemons.provision(
        EDGE_PACKAGES,
        this.daemonSpec(s),
        () => this.#answers(),
        signal,
      );
      try {
        this.repo.saveSettings(s, previous?.packages ?? added);
        await this.#load();
      } catch (err) {
        if (previous) {
          this.repo.saveSettings(previous, previous.packages);
          await this.#load().catch(() => {});
        } else {
          this.repo.deleteSettings();
          await this.#c.daemons.forget('caddy').catch(() => {});
          await this.#c.daemons.uninstall(added, true).catch(() => {});
        }
        throw err;
      }
      this.#watch();
      this.#c.logger.info({ ports: [s.httpPort, s.httpsPort], issuer: s.issuer }, 'edge installed');
      return this.#status();
    });
  }

  /** Stops Caddy and removes what `edge install` added; the domains are kept for a later install. */
  async uninstall(purge: boolean): Promise<{ removed: string[] }> {
    return this.#serial(async () => {
      const s = this.requireSettings();
      await this.#c.daemons.forget('caddy');
      await this.#c.daemons.uninstall(s.packages, purge);
      this.repo.deleteSettings();
      this.#appliedId = undefined;
      this.#unwatch();
      return { removed: s.packages };
    });
  }

  /** The edge's state. */
  status(): Promise<EdgeStatus> {
    return this.#serial(() => this.#status());
  }

  async #status(): Promise<EdgeStatus> {
    const settings = this.repo.settings();
    const applied =
      !!settings &&
      !!this.#appliedId &&
      (await adminHasId(this.paths.adminSocket, this.#appliedId).catch(() => false));
    return {
      installed: !!settings,
      settings: settings
        ? {
            httpPort: settings.httpPort,
            httpsPort: settings.httpsPort,
            issuer: settings.issuer,
            email: settings.email,
            acmeCa: settings.acmeCa ?? null,
          }
        : null,
      daemon: settings ? await this.#c.daemons.status('caddy') : null,
      applied,
      adminSocket: this.paths.adminSocket,
      rootCert: this.paths.rootCert,
      domains: this.repo.count(),
      certProblems: this.repo.domains().filter((d) => d.cert === 'error' || d.cert === 'expiring').length,
    };
  }

  /** The settings, or EDGE_NOT_INSTALLED. */
  requireSettings(): EdgeSettings & { packages: string[] } {
    const s = this.repo.settings();
    if (!s)
      throw new EdgeUnavailableError(
        'EDGE_NOT_INSTALLED',
        'the edge is not installed on this node; run plexus edge install',
      );
    return s;
  }

  // --- TrafficSwitch ---------------------------------------------------------------------------

  /** Sends new connections for `app`'s domains to 127.0.0.1:`port` (Caddy drains the old ones). */
  async switchTo(app: string, port: number): Promise<void> {
    this.#switched.set(app, port);
    if (this.repo.settings() && this.repo.domains().some((d) => d.app === app)) await this.apply();
  }

  /**
   * Requests Caddy still has in flight to 127.0.0.1:`port` (its `/reverse_proxy/upstreams`
   * counts them per upstream): a deploy drains the old release until this is 0.
   */
  async inFlight(_app: string, port: number): Promise<number> {
    if (!this.repo.settings()) return 0;
    const r = await adminCall(this.paths.adminSocket, 'GET', '/reverse_proxy/upstreams');
    if (r.status !== 200) return 0;
    const ups = JSON.parse(r.body) as { address: string; num_requests: number }[];
    return ups.find((u) => u.address === `127.0.0.1:${port}`)?.num_requests ?? 0;
  }

  /** `app` was removed: its domains go, and Caddy stops serving them. */
  async forget(app: string): Promise<void> {
    this.#switched.delete(app);
    const hosts = this.repo.deleteApp(app);
    if (hosts.length) {
      this.#c.logger.info({ app, hosts }, 'app removed: its domains are no longer served');
      if (this.repo.settings()) await this.apply();
    }
  }

  // --- config ----------------------------------------------------------------------------------

  /** Loads the current config into Caddy (a no-op when it runs it already). */
  apply(): Promise<void> {
    return this.#serial(() => this.#load());
  }

  /** Re-applies the config when Caddy does not run it (restarted, or an app's port moved). */
  ensureApplied(): Promise<void> {
    return this.#serial(async () => {
      if (!this.repo.settings()) return;
      const { id } = this.#render();
      if (id === this.#appliedId && (await adminHasId(this.paths.adminSocket, id))) return;
      this.#c.logger.info({ id }, 'Caddy does not run the edge config (restarted?); loading it');
      await this.#load();
    });
  }

  async #load(): Promise<void> {
    const root = this.repo.settings()?.acmeCaRoot;
    // A public certificate, read by Caddy's user; named by its content, so a new root is a new config.
    if (root) {
      writeFileSync(this.#acmeCaRootPath(root), root, { mode: 0o644 });
      chmodSync(this.#acmeCaRootPath(root), 0o644);
    }
    const { id, config } = this.#render();
    await adminLoad(this.paths.adminSocket, config);
    this.#appliedId = id;
  }

  #render() {
    const settings = this.requireSettings();
    const byApp = new Map<string, string[]>();
    for (const d of this.repo.domains()) byApp.set(d.app, [...(byApp.get(d.app) ?? []), d.host]);
    const routes: AppRoute[] = [];
    for (const [app, hosts] of byApp) {
      const port = this.#switched.get(app) ?? this.#c.upstreams.upstreamOf(app);
      // An app with no live release gets no upstream: Caddy answers 502 for it, and keeps its certificate.
      routes.push({ app, hosts, port: port ?? 0 });
    }
    const acmeCaRoot = settings.acmeCaRoot ? this.#acmeCaRootPath(settings.acmeCaRoot) : undefined;
    return renderConfig(settings, { ...this.paths, acmeCaRoot }, routes);
  }

  #acmeCaRootPath(pem: string): string {
    return join(
      this.#init.dir,
      `acme-ca-root-${createHash('sha256').update(pem).digest('hex').slice(0, 12)}.pem`,
    );
  }

  /** True when Caddy answers on its admin socket. */
  async #answers(): Promise<boolean> {
    return (await adminCall(this.paths.adminSocket, 'GET', '/config/')).status === 200;
  }

  /** Runs `fn` after every earlier config change: two loads never interleave. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  // --- certificates ----------------------------------------------------------------------------

  /** Checks every domain's certificate and records what it found; logs the problems. */
  async checkCertificates(): Promise<void> {
    const s = this.repo.settings();
    if (!s) return;
    // Why Caddy could not get a certificate, when it could not: its own log says (the CA's answer).
    const failures = issuanceFailures(await this.#c.daemons.tail('caddy', CADDY_LOG_LINES).catch(() => []));
    for (const d of this.repo.domains()) {
      let f: CertFinding = await checkCertificate(
        d.host,
        s.httpsPort,
        d.createdAt,
        s.issuer === 'internal' ? this.paths.rootCert : undefined,
        (s.acmeCa && s.acmeCaRoot) || undefined,
      );
      const why = failures.get(d.host);
      if (why && f.cert !== 'ok') {
        // A CA's refusal is an error at once, not `pending`: Caddy retries, but it needs action.
        const text = `issuance failed: ${why}`.slice(0, CERT_ERROR_MAX_CHARS);
        f =
          f.cert === 'expiring'
            ? { ...f, error: `${f.error}; ${text}`.slice(0, CERT_ERROR_MAX_CHARS) }
            : { ...f, cert: 'error', error: text };
      }
      if ((f.cert === 'error' || f.cert === 'expiring') && f.error !== d.certError)
        this.#c.logger.warn(
          { host: d.host, app: d.app, cert: f.cert, error: f.error },
          'certificate problem',
        );
      this.repo.setCert(d.host, f);
    }
  }
}
