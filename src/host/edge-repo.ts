/** The `edge` and `domains` tables: the edge's settings and the domains it serves, with their certificate state. */
import type { Db } from '../store/index.ts';
import type { EdgeSettings } from './caddy-config.ts';

/** What the last check of a domain's certificate found. */
export type CertStatus = 'pending' | 'ok' | 'expiring' | 'error';

/** A domain row. */
export interface DomainRow {
  host: string;
  app: string;
  createdAt: number;
  cert: CertStatus;
  certExpires: number | null;
  certIssuer: string | null;
  certError: string | null;
  checkedAt: number | null;
}

interface RawDomain {
  host: string;
  app: string;
  created_at: number;
  cert_status: CertStatus;
  cert_expires: number | null;
  cert_issuer: string | null;
  cert_error: string | null;
  checked_at: number | null;
}

/** Repository of the edge's settings and domains. */
export class EdgeRepo {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** The settings, or undefined when the edge is not installed. */
  settings(): (EdgeSettings & { packages: string[] }) | undefined {
    const r = this.#db.prepare('SELECT * FROM edge WHERE id = 1').get() as
      | {
          http_port: number;
          https_port: number;
          issuer: 'acme' | 'internal';
          email: string | null;
          acme_ca: string | null;
          acme_ca_root: string | null;
          packages: string;
        }
      | undefined;
    return (
      r && {
        httpPort: r.http_port,
        httpsPort: r.https_port,
        issuer: r.issuer,
        email: r.email,
        acmeCa: r.acme_ca,
        acmeCaRoot: r.acme_ca_root,
        packages: JSON.parse(r.packages) as string[],
      }
    );
  }

  /** Saves the settings (an install run again keeps the packages the first one added). */
  saveSettings(s: EdgeSettings, packages: string[]): void {
    this.#db
      .prepare(
        `INSERT INTO edge (id, http_port, https_port, issuer, email, acme_ca, acme_ca_root, packages, installed_at)
         VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET http_port = excluded.http_port, https_port = excluded.https_port,
           issuer = excluded.issuer, email = excluded.email, acme_ca = excluded.acme_ca,
           acme_ca_root = excluded.acme_ca_root`,
      )
      .run(
        s.httpPort,
        s.httpsPort,
        s.issuer,
        s.email,
        s.acmeCa ?? null,
        s.acmeCaRoot ?? null,
        JSON.stringify(packages),
        Date.now(),
      );
  }

  /** Forgets the edge (its domains stay, to be served again by the next install). */
  deleteSettings(): void {
    this.#db.prepare('DELETE FROM edge').run();
  }

  /** One domain, or undefined. */
  domain(host: string): DomainRow | undefined {
    const r = this.#db.prepare('SELECT * FROM domains WHERE host = ?').get(host) as RawDomain | undefined;
    return r && fromRaw(r);
  }

  /** Every domain, by app then host. */
  domains(): DomainRow[] {
    return (this.#db.prepare('SELECT * FROM domains ORDER BY app, host').all() as RawDomain[]).map(fromRaw);
  }

  /** How many domains there are. */
  count(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM domains').get() as { n: number }).n;
  }

  /** Adds a domain (pending until its certificate is seen). */
  addDomain(host: string, app: string): void {
    this.#db
      .prepare('INSERT INTO domains (host, app, created_at) VALUES (?, ?, ?)')
      .run(host, app, Date.now());
  }

  /** Removes a domain; true when it existed. */
  deleteDomain(host: string): boolean {
    return this.#db.prepare('DELETE FROM domains WHERE host = ?').run(host).changes > 0;
  }

  /** Removes every domain of an app; returns their hosts. */
  deleteApp(app: string): string[] {
    const hosts = (
      this.#db.prepare('SELECT host FROM domains WHERE app = ?').all(app) as { host: string }[]
    ).map((r) => r.host);
    this.#db.prepare('DELETE FROM domains WHERE app = ?').run(app);
    return hosts;
  }

  /** Records what a certificate check found. */
  setCert(
    host: string,
    c: { cert: CertStatus; expires: number | null; issuer: string | null; error: string | null },
  ): void {
    this.#db
      .prepare(
        'UPDATE domains SET cert_status = ?, cert_expires = ?, cert_issuer = ?, cert_error = ?, checked_at = ? WHERE host = ?',
      )
      .run(c.cert, c.expires, c.issuer, c.error, Date.now(), host);
  }
}

function fromRaw(r: RawDomain): DomainRow {
  return {
    host: r.host,
    app: r.app,
    createdAt: r.created_at,
    cert: r.cert_status,
    certExpires: r.cert_expires,
    certIssuer: r.cert_issuer,
    certError: r.cert_error,
    checkedAt: r.checked_at,
  };
}
