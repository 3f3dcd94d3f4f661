/**
 * The `tokens` table: join tokens created on this node, so that `plexus token ls` can show each
 * one's uses and state. Only the creating node keeps this ledger; the uses themselves are
 * counted from the replicated membership (every admission names its token).
 */
import type { Db } from '../store/index.ts';
import type { Membership } from './membership.ts';

/** A token created here, as `plexus token ls` shows it. */
export interface TokenEntry {
  id: string;
  createdAt: number;
  expiresAt: number;
  uses: number;
  used: number;
  tags: string[];
  state: 'active' | 'expired' | 'used' | 'revoked';
}

/** The repository of the tokens created on this node. */
export class TokenLedger {
  readonly #db: Db;
  readonly #membership: Membership;

  constructor(db: Db, membership: Membership) {
    this.#db = db;
    this.#membership = membership;
  }

  /** Records a token created here, for `token ls`. */
  record(t: { id: string; exp: number; uses: number; tags: string[] }): void {
    this.#db
      .prepare('INSERT INTO tokens (id, created_at, exp, uses, tags) VALUES (?, ?, ?, ?, ?)')
      .run(t.id, Date.now(), t.exp, t.uses, JSON.stringify(t.tags));
  }

  /** Tokens created here, with their use counts and state. */
  list(now = Date.now()): TokenEntry[] {
    const rows = this.#db.prepare('SELECT * FROM tokens ORDER BY created_at').all() as {
      id: string;
      created_at: number;
      exp: number;
      uses: number;
      tags: string;
    }[];
    return rows.map((r) => {
      const used = this.#membership.tokenUses(r.id);
      const revoked = this.#membership.isTokenRevoked(r.id);
      const state = revoked
        ? 'revoked'
        : r.exp * 1000 <= now
          ? 'expired'
          : used >= r.uses
            ? 'used'
            : 'active';
      return {
        id: r.id,
        createdAt: r.created_at,
        expiresAt: r.exp * 1000,
        uses: r.uses,
        used,
        tags: JSON.parse(r.tags) as string[],
        state,
      };
    });
  }

  /** True if a token with this id was created here. */
  has(id: string): boolean {
    return Boolean(this.#db.prepare('SELECT 1 FROM tokens WHERE id = ?').get(id));
  }
}
