/**
 * The `members` table: one row per admission this node judged. A row is a member (live, or
 * revoked with `revoked_at`), or a claim that lost a conflict (`lost` holds why), kept to be
 * reported and judged only once. Only SQL lives here; the rules are membership.ts's and
 * admission-rules.ts's.
 */
import type { Db } from '../store/index.ts';
import { MAX_LOST_ROWS } from './constants.ts';
import type { Admission, MemberPayload } from './records.ts';

/** A member as stored. */
export interface Member {
  peerId: string;
  name: string;
  tags: string[];
  tokenId: string;
  joinedAt: number;
  /** When this node first saw the admission (ms). */
  firstSeen: number;
  addrs: string[];
  lastSeen: number | null;
  revokedAt: number | null;
}

/** A claim this node refused or dropped in a conflict (`plexus peers` shows them). */
export interface Conflict {
  peerId: string;
  name: string;
  tokenId: string;
  at: number;
  code: string;
  message: string;
}

/** A row of `members`. */
export interface MemberRow {
  peer_id: string;
  name: string;
  tags: string;
  token_id: string;
  joined_at: number;
  admission: string;
  addrs: string;
  last_seen: number | null;
  revoked_at: number | null;
  first_seen: number;
  lost: string | null;
}

/** A row as a Member. */
export function toMember(r: MemberRow): Member {
  return {
    peerId: r.peer_id,
    name: r.name,
    tags: JSON.parse(r.tags) as string[],
    tokenId: r.token_id,
    joinedAt: r.joined_at,
    firstSeen: r.first_seen,
    addrs: JSON.parse(r.addrs) as string[],
    lastSeen: r.last_seen,
    revokedAt: r.revoked_at,
  };
}

/** The repository of `members`. */
export class MemberRows {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Every row, lost ones included (to rebuild the in-memory views at start). */
  all(): MemberRow[] {
    return this.#db.prepare('SELECT * FROM members').all() as MemberRow[];
  }

  /** The row of a peer, whatever its state. */
  byPeer(peerId: string): MemberRow | undefined {
    return this.#db.prepare('SELECT * FROM members WHERE peer_id = ?').get(peerId) as MemberRow | undefined;
  }

  /** The live member holding a name. */
  liveByName(name: string): MemberRow | undefined {
    return this.#db
      .prepare('SELECT * FROM members WHERE name = ? AND revoked_at IS NULL AND lost IS NULL')
      .get(name) as MemberRow | undefined;
  }

  /** Members (live or revoked) admitted with a token. */
  holdersOf(tokenId: string): MemberRow[] {
    return this.#db
      .prepare('SELECT * FROM members WHERE token_id = ? AND lost IS NULL')
      .all(tokenId) as MemberRow[];
  }

  /** Members, live first, by name. */
  list(includeRevoked: boolean): MemberRow[] {
    const where = includeRevoked ? 'WHERE lost IS NULL' : 'WHERE revoked_at IS NULL AND lost IS NULL';
    return this.#db
      .prepare(`SELECT * FROM members ${where} ORDER BY revoked_at IS NOT NULL, name`)
      .all() as MemberRow[];
  }

  /** Every member's admission (lost claims are never passed on). */
  admissions(): Admission[] {
    return (
      this.#db.prepare('SELECT admission FROM members WHERE lost IS NULL').all() as { admission: string }[]
    ).map((r) => JSON.parse(r.admission) as Admission);
  }

  /** Stores an admission; `lost` set makes it a refused claim. Call inside `durably`. */
  insert(
    adm: Admission,
    m: MemberPayload,
    firstSeen: number,
    lost?: { code: string; message: string },
  ): void {
    this.#db
      .prepare(
        `INSERT OR IGNORE INTO members
           (peer_id, name, tags, token_id, joined_at, admitted_by, admission, first_seen, lost)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        m.peerId,
        m.name,
        JSON.stringify(m.tags),
        m.tokenId,
        m.at,
        `token:${m.tokenId}`,
        JSON.stringify(adm),
        firstSeen,
        lost ? JSON.stringify(lost) : null,
      );
    if (lost) {
      this.#db
        .prepare(
          `DELETE FROM members WHERE lost IS NOT NULL AND peer_id NOT IN
             (SELECT peer_id FROM members WHERE lost IS NOT NULL ORDER BY first_seen DESC LIMIT ?)`,
        )
        .run(MAX_LOST_ROWS);
    }
  }

  /** Marks a member as having lost a race. Call inside `durably`. */
  markLost(peerId: string, reason: { code: string; message: string }): void {
    this.#db.prepare('UPDATE members SET lost = ? WHERE peer_id = ?').run(JSON.stringify(reason), peerId);
  }

  /** Marks a member revoked. */
  markRevoked(peerId: string, at: number): void {
    this.#db
      .prepare('UPDATE members SET revoked_at = ? WHERE peer_id = ? AND revoked_at IS NULL')
      .run(at, peerId);
  }

  /** The latest refused or dropped claims, newest first. */
  conflicts(limit: number): Conflict[] {
    const rows = this.#db
      .prepare('SELECT * FROM members WHERE lost IS NOT NULL ORDER BY first_seen DESC LIMIT ?')
      .all(limit) as MemberRow[];
    return rows.map((r) => {
      const { code, message } = JSON.parse(r.lost as string) as { code: string; message: string };
      return { peerId: r.peer_id, name: r.name, tokenId: r.token_id, at: r.first_seen, code, message };
    });
  }

  /** How many members a token admitted (revoked ones included). */
  tokenUses(tokenId: string): number {
    return (
      this.#db
        .prepare('SELECT COUNT(*) AS n FROM members WHERE token_id = ? AND lost IS NULL')
        .get(tokenId) as {
        n: number;
      }
    ).n;
  }

  /** Remembers a member's addresses and when it was last heard from. */
  touch(peerId: string, update: { addrs?: string[]; lastSeen?: number }): void {
    if (update.addrs) {
      this.#db
        .prepare('UPDATE members SET addrs = ? WHERE peer_id = ?')
        .run(JSON.stringify(update.addrs.slice(0, 32)), peerId);
    }
    if (update.lastSeen) {
      this.#db.prepare('UPDATE members SET last_seen = ? WHERE peer_id = ?').run(update.lastSeen, peerId);
    }
  }
}
