/**
 * Exposed services: what the mesh may reach on this node. A service is a name and a local
 * port, either exposed by hand (`plexus expose`, kept in SQLite) or provided by another
 * subsystem (an app with a `port` is exposed under its own name). Only these ports are
 * reachable from the mesh. A subsystem may also serve a name in-process (in-process.ts; the copy
 * channels of `plexus cp`): a tunnel to it reaches its handler, never a port, and it is not
 * listed.
 */
import type { Db } from '../store/index.ts';
import { MAX_SERVICES } from './constants.ts';
import { ServiceConflictError, UnknownServiceError } from './errors.ts';
import type { InProcessTarget, LocalTarget } from './in-process.ts';

/** One exposed service. */
export interface Service {
  name: string;
  port: number;
  /** `manual` (plexus expose) or the providing subsystem, e.g. `app`. */
  source: string;
}

/** Supplies services owned elsewhere (apps with a port); called on every lookup, so keep it cheap. */
export type ServiceProvider = () => { name: string; port: number }[];

/** Finds a service served in-process by name; called on every lookup, so keep it cheap. */
export type InProcessLookup = (name: string) => InProcessTarget | undefined;

/** A service name is a DNS label, so `service.node` parses unambiguously. */
export const SERVICE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

interface Row {
  name: string;
  port: number;
  created_at: number;
}

/** The `tunnel_services` table. */
export class ServiceRepo {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }
  /** Every manually exposed service, by name. */
  list(): { name: string; port: number; createdAt: number }[] {
    const rows = this.#db
      .prepare('SELECT name, port, created_at FROM tunnel_services ORDER BY name')
      .all() as Row[];
    return rows.map((r) => ({ name: r.name, port: r.port, createdAt: r.created_at }));
  }
  /** Inserts or replaces a service. */
  put(name: string, port: number): void {
    this.#db
      .prepare(
        'INSERT INTO tunnel_services (name, port, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET port = excluded.port',
      )
      .run(name, port, Date.now());
  }
  /** Deletes a service; true when it existed. */
  remove(name: string): boolean {
    return this.#db.prepare('DELETE FROM tunnel_services WHERE name = ?').run(name).changes > 0;
  }
}

/** Manual services plus those of providers, with the lookups the tunnel server needs. */
export class ServiceDirectory {
  readonly #repo: ServiceRepo;
  readonly #providers: { source: string; fn: ServiceProvider }[] = [];
  readonly #inProcess: InProcessLookup[] = [];
  readonly #nodeName: string;
  #manual: Map<string, number>;

  constructor(repo: ServiceRepo, nodeName: string) {
    this.#repo = repo;
    this.#nodeName = nodeName;
    this.#manual = new Map(repo.list().map((s) => [s.name, s.port]));
  }

  /** Adds a provider of services (e.g. apps with a `port`); manual exposure wins on a name clash. */
  addProvider(source: string, fn: ServiceProvider): void {
    this.#providers.push({ source, fn });
  }

  /** Adds names served in-process (in-process.ts); exposed ports and services win on a clash. */
  addInProcess(lookup: InProcessLookup): void {
    this.#inProcess.push(lookup);
  }

  /** Every exposed service, manual first, sorted by name. */
  list(): Service[] {
    const out = new Map<string, Service>();
    for (const [name, port] of this.#manual) out.set(name, { name, port, source: 'manual' });
    for (const p of this.#providers) {
      let provided: { name: string; port: number }[] = [];
      try {
        provided = p.fn();
      } catch {
        continue;
      }
      for (const s of provided) {
        if (!out.has(s.name) && SERVICE_NAME_RE.test(s.name) && isPort(s.port))
          out.set(s.name, { name: s.name, port: s.port, source: p.source });
      }
    }
    // Names are [a-z0-9-]: code-unit order is their order, and it needs no ICU collation data
    // (~2.5 MB of an idle agent's RSS; see patches/README.md, the peer-store sort).
    return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Exposes `name` on local `port`, replacing an earlier port of the same name. */
  expose(name: string, port: number): Service {
    if (!this.#manual.has(name) && this.#manual.size >= MAX_SERVICES)
      throw new ServiceConflictError(
        'TOO_MANY_SERVICES',
        `at most ${MAX_SERVICES} services can be exposed`,
        'too_large',
      );
    this.#repo.put(name, port);
    this.#manual.set(name, port);
    return { name, port, source: 'manual' };
  }

  /** Stops exposing a manual service. */
  unexpose(name: string): void {
    if (!this.#repo.remove(name)) {
      const provided = this.list().find((s) => s.name === name);
      if (provided)
        throw new ServiceConflictError(
          'SERVICE_PROVIDED',
          `'${name}' is exposed by ${provided.source === 'app' ? 'the app of that name' : provided.source}; remove its port there`,
          'conflict',
        );
      throw new UnknownServiceError(name, this.#nodeName);
    }
    this.#manual.delete(name);
  }

  /** The port of an exposed service, or undefined. */
  portOf(name: string): number | undefined {
    return this.#manual.get(name) ?? this.list().find((s) => s.name === name)?.port;
  }

  /** Where a tunnel to service `name` goes: its port, its in-process handler, or undefined. */
  targetOf(name: string): LocalTarget | undefined {
    const port = this.portOf(name);
    if (port !== undefined) return port;
    for (const lookup of this.#inProcess) {
      const target = lookup(name);
      if (target) return target;
    }
    return undefined;
  }

  /** True when some service exposes `port`. */
  isExposedPort(port: number): boolean {
    for (const p of this.#manual.values()) if (p === port) return true;
    return this.list().some((s) => s.port === port);
  }
}

/** True for a TCP port number. */
export function isPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}
