/** The `tunnel_forwards` table: forwards survive an agent restart. */
import type { Db } from '../store/index.ts';

/** A stored forward. */
export interface ForwardRow {
  id: string;
  listenHost: string;
  listenPort: number;
  /** `service.node` or `node:port`, as the user gave it. */
  target: string;
  createdAt: number;
}

interface Raw {
  id: string;
  listen_host: string;
  listen_port: number;
  target: string;
  created_at: number;
}

/** Repository of forwards. */
export class ForwardRepo {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }
  /** Every forward, oldest first. */
  list(): ForwardRow[] {
    const rows = this.#db
      .prepare(
        'SELECT id, listen_host, listen_port, target, created_at FROM tunnel_forwards ORDER BY created_at, id',
      )
      .all() as Raw[];
    return rows.map((r) => ({
      id: r.id,
      listenHost: r.listen_host,
      listenPort: r.listen_port,
      target: r.target,
      createdAt: r.created_at,
    }));
  }
  /** Inserts a forward (the listen address is unique). */
  insert(f: ForwardRow): void {
    this.#db
      .prepare(
        'INSERT INTO tunnel_forwards (id, listen_host, listen_port, target, created_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(f.id, f.listenHost, f.listenPort, f.target, f.createdAt);
  }
  /** Deletes a forward; true when it existed. */
  remove(id: string): boolean {
    return this.#db.prepare('DELETE FROM tunnel_forwards WHERE id = ?').run(id).changes > 0;
  }
}
