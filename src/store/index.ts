/**
 * The agent's SQLite store: one better-sqlite3 file in WAL mode, shared by every subsystem.
 * Each subsystem owns its tables and hands its numbered migrations to `openStore`; the store
 * records which ones ran so that they run exactly once, in order, each in a transaction.
 */
import Database from 'better-sqlite3';
import { StoreError } from './errors.ts';

export { StoreError } from './errors.ts';

/** A better-sqlite3 database handle. */
export type Db = Database.Database;

/** One schema step, owned by a subsystem. `id` is `<module>-<NNN>` and never changes once shipped. */
export interface Migration {
  /** Stable identifier, for example `mesh-001`. */
  id: string;
  /** SQL run once inside a transaction. */
  sql: string;
}

/**
 * Opens (or creates) the database at `path` (`:memory:` for tests) and applies every migration
 * that has not run yet. Migrations of different modules are independent; within a module they
 * run in the order given.
 */
export function openStore(path: string, migrations: Migration[]): Db {
  let db: Db;
  try {
    db = new Database(path);
  } catch (err) {
    throw new StoreError(`cannot open database ${path}: ${(err as Error).message}`);
  }
  db.pragma('journal_mode = WAL');
  // NORMAL is durable across application crashes in WAL mode; only an OS crash may lose the
  // last transactions, which the mesh re-learns from its peers.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // Several processes (agent, CLI `join`) may touch the file; wait instead of failing at once.
  db.pragma('busy_timeout = 5000');
  cacheStatements(db);
  migrate(db, migrations);
  return db;
}

/**
 * Compiles each SQL text once: repositories call `db.prepare(sql)` at every use, and hot paths
 * (membership lookups for every gossip message and tunnel, telemetry, the connector) ran the
 * same few queries many times a second; compiling them each time was ~2 % of an idle agent's
 * CPU in a 20-node mesh. Statements keep no per-call state here (nothing uses `.iterate()`,
 * `.pluck()`, `.raw()` or `.expand()`, which would leak a mode to the next caller).
 */
function cacheStatements(db: Db): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, ReturnType<Db['prepare']>>();
  db.prepare = ((sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = prepare(sql);
      // Dynamic SQL would grow the cache without bound; the project's queries are a few dozen.
      if (cache.size < 512) cache.set(sql, stmt);
    }
    return stmt;
  }) as Db['prepare'];
}

/**
 * Runs `fn` in one transaction that is on disk when this returns, even across an OS crash or a
 * power loss (`synchronous = FULL` for its commit). For the security tables, where a lost last
 * write would reopen a replay or undo a revocation: seen command ids, webhook signatures,
 * admissions (token uses) and revocations. Everything else keeps NORMAL: the mesh re-learns it.
 * The pragma is per connection and the agent is single-threaded, so nothing else commits while
 * it is FULL; it cannot change inside a transaction, so nesting runs `fn` in the outer one.
 */
export function durably<T>(db: Db, fn: () => T): T {
  if (db.inTransaction) return fn();
  db.pragma('synchronous = FULL');
  try {
    return db.transaction(fn)();
  } finally {
    db.pragma('synchronous = NORMAL');
  }
}

/** Applies the migrations that have not run yet. Exported for tests. */
export function migrate(db: Db, migrations: Migration[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    id TEXT PRIMARY KEY,
    applied_at INTEGER NOT NULL
  )`);
  const seen = new Set(
    (db.prepare('SELECT id FROM schema_migrations').all() as { id: string }[]).map((r) => r.id),
  );
  const ids = new Set<string>();
  for (const m of migrations) {
    if (ids.has(m.id)) throw new StoreError(`duplicate migration id ${m.id}`);
    ids.add(m.id);
    if (seen.has(m.id)) continue;
    const run = db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)').run(m.id, Date.now());
    });
    try {
      run();
    } catch (err) {
      throw new StoreError(`migration ${m.id} failed: ${(err as Error).message}`);
    }
  }
}
