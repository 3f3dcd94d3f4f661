/** The `host_services` and `service_grants` tables: services plexus installed and PostgreSQL roles it made for apps. */
import type { Db } from '../store/index.ts';

/** A service row: the packages it asked for and those its install added. */
export interface ServiceRow {
  name: string;
  packages: string[];
  /** Packages the install added: `service rm` removes these and nothing the host had before. */
  added: string[];
  installedAt: number;
}

/** A role and database made for an app. */
export interface GrantRow {
  service: string;
  app: string;
  role: string;
  db: string;
  createdAt: number;
}

/** Repository of installed services and their grants. */
export class ServiceRepo {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** One service, or undefined. */
  get(name: string): ServiceRow | undefined {
    const r = this.#db.prepare('SELECT * FROM host_services WHERE name = ?').get(name) as
      | { name: string; packages: string; added: string; installed_at: number }
      | undefined;
    return (
      r && {
        name: r.name,
        packages: JSON.parse(r.packages),
        added: JSON.parse(r.added),
        installedAt: r.installed_at,
      }
    );
  }

  /** Every service, by name. */
  list(): ServiceRow[] {
    const names = this.#db.prepare('SELECT name FROM host_services ORDER BY name').all() as {
      name: string;
    }[];
    return names.map((n) => this.get(n.name)!);
  }

  /** Records an installed service. */
  add(row: Omit<ServiceRow, 'installedAt'>): void {
    this.#db
      .prepare(
        'INSERT OR REPLACE INTO host_services (name, packages, added, installed_at) VALUES (?, ?, ?, ?)',
      )
      .run(row.name, JSON.stringify(row.packages), JSON.stringify(row.added), Date.now());
  }

  /** Forgets a service and its grants. */
  delete(name: string): void {
    this.#db.prepare('DELETE FROM host_services WHERE name = ?').run(name);
    this.#db.prepare('DELETE FROM service_grants WHERE service = ?').run(name);
  }

  /** Records a grant (again: keeps the first one's time). */
  grant(g: Omit<GrantRow, 'createdAt'>): void {
    this.#db
      .prepare(
        'INSERT OR IGNORE INTO service_grants (service, app, role, db, created_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(g.service, g.app, g.role, g.db, Date.now());
  }

  /** The grants of a service. */
  grants(service: string): GrantRow[] {
    return (
      this.#db.prepare('SELECT * FROM service_grants WHERE service = ? ORDER BY app').all(service) as {
        service: string;
        app: string;
        role: string;
        db: string;
        created_at: number;
      }[]
    ).map((r) => ({ service: r.service, app: r.app, role: r.role, db: r.db, createdAt: r.created_at }));
  }
}
