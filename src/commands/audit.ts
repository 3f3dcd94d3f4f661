/**
 * The audit log (issue 5): one row per command a node accepted, refused or relayed, with id,
 * key id, action, verdict and time. Refusals at the door (bad JSON, bad signature) are recorded
 * on the node that refused them; accepted commands on the target, with their outcome.
 *
 * Refusals fold (issue 12): those from one source with one code within a window share one row,
 * whose `count` says how many it stands for, so a flood of bad envelopes cannot roll the log
 * over and erase real entries. The row keeps the first refusal's details. Accepted and relayed
 * entries are never folded.
 */
import { type Db, durably } from '../store/index.ts';
import {
  MAX_AUDIT_ROWS,
  MAX_REFUSAL_FOLDS,
  MAX_REFUSAL_ROWS_PER_WINDOW,
  REFUSAL_FOLD_FLUSH_MS,
  REFUSAL_FOLD_WINDOW_MS,
} from './constants.ts';
import { type Fold, RefusalFolds } from './refusal-folds.ts';

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
  /** How many refusals this row stands for; 1 for every other row. */
  count: number;
  /**
   * Who sent it: the remote address (http), the relaying peer ID (mesh), `socket`, or `*` for
   * the refusals of many sources folded together once a window's new-row budget was spent.
   */
  source: string | null;
  /** The time of the latest refusal folded into this row. */
  lastAt: number | null;
}

/** What a caller records; the log fills in seq, time and counts. */
export type AuditInput = Omit<AuditEntry, 'seq' | 'at' | 'outcome' | 'count' | 'source' | 'lastAt'> & {
  at?: number;
  source?: string;
};

/** A refusal to record: where from, and the key that signed it when its signature verified. */
export type RefusalInput = Omit<AuditInput, 'verdict' | 'source'> & {
  source: string;
  /**
   * The kid of a verified signature: refusals of known keys (a role too small, a replay) fold
   * per key, so one operator's refusals never hide another's; a claimed kid is not used, as
   * anyone can write any.
   */
  verifiedKid?: string;
};

const COLUMNS =
  'seq, at, id, kid, action, target, verdict, code, detail, via, outcome, count, source, last_at AS lastAt';

/** The audit repository. */
export class AuditLog {
  readonly #db: Db;
  readonly #folds = new RefusalFolds({
    windowMs: REFUSAL_FOLD_WINDOW_MS,
    maxFolds: MAX_REFUSAL_FOLDS,
    maxNewRowsPerWindow: MAX_REFUSAL_ROWS_PER_WINDOW,
  });
  /** Folds whose count is ahead of their row; written by `flush()`. */
  readonly #dirty = new Set<Fold>();
  #flushTimer: NodeJS.Timeout | undefined;
  #inserts = 0;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Appends an accepted or relayed entry (never folded); returns its seq. */
  record(e: AuditInput): number {
    const at = e.at ?? Date.now();
    return this.#insert(e, at, null);
  }

  /**
   * Records a refusal: into the live row of its source and code when there is one (`folded`),
   * else into a new row. Costs no SQL while it folds; the count reaches the row within
   * REFUSAL_FOLD_FLUSH_MS, or at once when the log is read.
   */
  refuse(e: RefusalInput, now = Date.now()): { seq: number; folded: boolean } {
    let source = e.source.slice(0, 128);
    let key = `${e.via}\n${source}\n${e.code}\n${e.verifiedKid ?? ''}`;
    let fold = this.#folds.get(key, now);
    if (!fold && !this.#folds.takeRow(now)) {
      // The window's budget of new rows is spent: a flood from many sources. Fold by code alone.
      source = '*';
      key = `${e.via}\n*\n${e.code}\n`;
      fold = this.#folds.get(key, now);
    }
    if (fold) {
      fold.count++;
      fold.lastAt = now;
      this.#markDirty(fold);
      return { seq: fold.seq, folded: true };
    }
    const seq = this.#insert({ ...e, verdict: 'refused', source }, now, now);
    this.#folds.set(key, { seq, firstAt: now, lastAt: now, count: 1 });
    return { seq, folded: false };
  }

  /** Records how an accepted command ended. */
  finish(seq: number, outcome: string): void {
    this.#db.prepare('UPDATE audit SET outcome = ? WHERE seq = ?').run(outcome, seq);
  }

  /** Writes the folded counts that are not on disk yet (a read does this first; so does stop). */
  flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#dirty.size === 0) return;
    const update = this.#db.prepare('UPDATE audit SET count = ?, last_at = ? WHERE seq = ?');
    this.#db.transaction(() => {
      for (const fold of this.#dirty) {
        update.run(fold.count, fold.lastAt, fold.seq);
      }
    })();
    this.#dirty.clear();
  }

  /** How many sources' folds are held in memory (bounded by MAX_REFUSAL_FOLDS). */
  get foldsHeld(): number {
    return this.#folds.size;
  }

  /** The latest entries, oldest first, with every folded count up to date. */
  list(opts: { limit?: number; id?: string } = {}): AuditEntry[] {
    this.flush();
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 10_000);
    const rows = opts.id
      ? this.#db
          .prepare(`SELECT ${COLUMNS} FROM audit WHERE id = ? ORDER BY seq DESC LIMIT ?`)
          .all(opts.id, limit)
      : this.#db.prepare(`SELECT ${COLUMNS} FROM audit ORDER BY seq DESC LIMIT ?`).all(limit);
    return (rows as AuditEntry[]).reverse();
  }

  #insert(e: AuditInput, at: number, lastAt: number | null): number {
    const r = this.#db
      .prepare(
        `INSERT INTO audit (at, id, kid, action, target, verdict, code, detail, via, source, last_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        at,
        e.id,
        e.kid,
        e.action,
        e.target,
        e.verdict,
        e.code,
        e.detail?.slice(0, 500) ?? null,
        e.via,
        e.source?.slice(0, 128) ?? null,
        lastAt,
      );
    // Prune now and then rather than on every insert.
    if (++this.#inserts % 1000 === 0) {
      this.#db.prepare('DELETE FROM audit WHERE seq <= (SELECT MAX(seq) FROM audit) - ?').run(MAX_AUDIT_ROWS);
    }
    return Number(r.lastInsertRowid);
  }

  #markDirty(fold: Fold): void {
    this.#dirty.add(fold);
    if (this.#flushTimer) return;
    this.#flushTimer = setTimeout(() => {
      try {
        this.flush();
      } catch {
        // The database is closing or busy: the counts stay in memory for the next flush.
      }
    }, REFUSAL_FOLD_FLUSH_MS);
    this.#flushTimer.unref();
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
    // On disk before the command runs: an id lost to a power cut would let its envelope run
    // again once the node is back (issue 12).
    const r = durably(this.#db, () =>
      this.#db.prepare('INSERT OR IGNORE INTO command_ids (id, exp) VALUES (?, ?)').run(id, exp),
    );
    return r.changes === 1;
  }

  /** Forgets ids whose command can no longer be valid. Expired commands are refused by time anyway. */
  prune(now = Date.now()): void {
    this.#db.prepare('DELETE FROM command_ids WHERE exp < ?').run(Math.floor(now / 1000) - 120);
  }
}
