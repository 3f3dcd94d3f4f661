/** The `releases` table: every release of an app, newest first. */
import type { Db } from '../store/index.ts';
import type { RunSpec } from './spec.ts';

/** `ready` extracted, `active` the one `current` points at, `failed` did not pass health, `pruned` files gone. */
export type ReleaseStatus = 'ready' | 'active' | 'failed' | 'pruned';

/** A release row. */
export interface ReleaseRow {
  app: string;
  id: string;
  createdAt: number;
  /** Where it came from: the URL, `upload`, or `webhook:URL`. */
  source: string;
  sha256: string;
  bytes: number;
  spec: RunSpec;
  status: ReleaseStatus;
}

interface Raw {
  app: string;
  id: string;
  created_at: number;
  source: string;
  sha256: string;
  bytes: number;
  spec: string;
  status: ReleaseStatus;
}

/** Repository of releases. */
export class ReleaseRepo {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Adds a release. */
  insert(row: ReleaseRow): void {
    this.#db
      .prepare(
        `INSERT INTO releases (app, id, created_at, source, sha256, bytes, spec, status)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        row.app,
        row.id,
        row.createdAt,
        row.source,
        row.sha256,
        row.bytes,
        JSON.stringify(row.spec),
        row.status,
      );
  }

  /** One release. */
  get(app: string, id: string): ReleaseRow | undefined {
    const raw = this.#db.prepare('SELECT * FROM releases WHERE app = ? AND id = ?').get(app, id) as
      | Raw
      | undefined;
    return raw && fromRaw(raw);
  }

  /** Every release of an app, newest first. */
  list(app: string): ReleaseRow[] {
    return (
      this.#db
        .prepare('SELECT * FROM releases WHERE app = ? ORDER BY created_at DESC, id DESC')
        .all(app) as Raw[]
    ).map(fromRaw);
  }

  /** Sets a release's status. */
  setStatus(app: string, id: string, status: ReleaseStatus): void {
    this.#db.prepare('UPDATE releases SET status = ? WHERE app = ? AND id = ?').run(status, app, id);
  }

  /** Forgets pruned and failed releases beyond the newest `keep` rows of an app (history stays bounded). */
  forgetOld(app: string, keep: number): void {
    this.#db
      .prepare(
        `DELETE FROM releases WHERE app = ? AND status IN ('pruned', 'failed') AND id NOT IN (
           SELECT id FROM releases WHERE app = ? ORDER BY created_at DESC, id DESC LIMIT ?)`,
      )
      .run(app, app, keep);
  }

  /** Marks `id` active and whatever was active before `ready`. */
  activate(app: string, id: string): void {
    this.#db.transaction(() => {
      this.#db.prepare(`UPDATE releases SET status = 'ready' WHERE app = ? AND status = 'active'`).run(app);
      this.setStatus(app, id, 'active');
    })();
  }
}

function fromRaw(r: Raw): ReleaseRow {
  return {
    app: r.app,
    id: r.id,
    createdAt: r.created_at,
    source: r.source,
    sha256: r.sha256,
    bytes: r.bytes,
    spec: JSON.parse(r.spec) as RunSpec,
    status: r.status,
  };
}
