/**
 * The audit log (issue 5): one row per command a node accepted, refused or relayed, with id,
 * key id, action, verdict and time. Refusals at the door (bad JSON, bad signature) are recorded
 * on the node that refused them; accepted commands on the target, with their outcome.
 */
import type { Db } from '../store/index.ts';
import { MAX_AUDIT_ROWS } from './constants.ts';

/** `accepted` (ran), `refused` (never ran), `relayed` (passed on to its target). */
export type Verdict = 'accepted' | 'refused' | 'relayed';

/** One audit entry. */
export interface AuditEntry {
  seq: number;
  at: number;
  id: string | null;
  kid: string | null;
  action: string | null;
  target: string | null;
  verdict: Verdict;
  /** Error code of a refusal. */
  code: string | null;
  detail: string | null;
  /** How it arrived: `http`, `socket` or `mesh` (from a relaying node). */
  via: string;
  /** For accepted commands: `ok` or the error code the action ended with. */
  outcome: string | null;
}

/** The audit repository. */
export class AuditLog {
  readonly #db: Db;
  #inserts = 0;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Appends an entry; returns its seq. */
  record(e: Omit<AuditEntry, 'seq' | 'at' | 'outcome'> & { at?: number }): number {
    const r = this.#db
      .prepare(
        `INSERT INTO audit (at, id, kid, action, target, verdict, code, detail, via)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        e.at ?? Date.now(),
        e.id,
        e.kid,
        e.action,
        e.target,
        e.verdict,
        e.code,
        e.detail?.slice(0, 500) ?? null,
        e.via,
      );
    // Prune now and then rather than on every insert.
    if (++this.#inserts % 1000 === 0) {
      this.#db.prepare('DELETE FROM audit WHERE seq <= (SELECT MAX(seq) FROM audit) - ?').run(MAX_AUDIT_ROWS);
    }
    return Number(r.lastInsertRowid);
  }

  /** Records how an accepted command ended. */
  finish(seq: number, outcome: string): void {
    this.#db.prepare('UPDATE audit SET outcome = ? WHERE seq = ?').run(outcome, seq);
  }

  /** The latest entries, oldest first. */
  list(opts: { limit?: number; id?: string } = {}): AuditEntry[] {
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 10_000);
    const rows = opts.id
      ? this.#db.prepare('SELECT * FROM audit WHERE id = ? ORDER BY seq DESC LIMIT ?').all(opts.id, limit)
      : this.#db.prepare('SELECT * FROM audit ORDER BY seq DESC LIMIT ?').all(limit);
    return (rows as AuditEntry[]).reverse();
  }
}

/** Seen command ids, persisted until they expire (replay protection across restarts). */
export class SeenIds {
  readonly #db: Db;
  #checks = 0;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Marks `id` seen until `exp` (unix s); false if it was already seen (a replay). */
  claim(id: string, exp: number, now = Date.now()): boolean {
    if (++this.#checks % 500 === 0) this.prune(now);
    const r = this.#db.prepare('INSERT OR IGNORE INTO command_ids (id, exp) VALUES (?, ?)').run(id, exp);
    return r.changes === 1;
  }

  /** Forgets ids whose command can no longer be valid. Expired commands are refused by time anyway. */
  prune(now = Date.now()): void {
    this.#db.prepare('DELETE FROM command_ids WHERE exp < ?').run(Math.floor(now / 1000) - 120);
  }
}
