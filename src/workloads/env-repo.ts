/** The `app_env` table: an app's env vars, every value sealed with the SecretBox. */
import type { Db } from '../store/index.ts';
import type { SecretBox } from './secrets.ts';

/** Repository of app env vars. Values go in and out as plaintext only through this class. */
export class EnvRepo {
  readonly #db: Db;
  readonly #box: SecretBox;

  constructor(db: Db, box: SecretBox) {
    this.#db = db;
    this.#box = box;
  }

  /** Sets (or replaces) variables, all in one transaction. */
  set(app: string, vars: Record<string, string>): void {
    const stmt = this.#db.prepare(
      `INSERT INTO app_env (app, name, nonce, value, tag, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (app, name) DO UPDATE SET nonce = excluded.nonce, value = excluded.value,
         tag = excluded.tag, updated_at = excluded.updated_at`,
    );
    const now = Date.now();
    this.#db.transaction(() => {
      for (const [name, plaintext] of Object.entries(vars)) {
        const s = this.#box.seal(app, name, plaintext);
        stmt.run(app, name, s.nonce, s.value, s.tag, now);
      }
    })();
  }

  /** Removes variables; returns the names that existed. */
  unset(app: string, names: string[]): string[] {
    const stmt = this.#db.prepare('DELETE FROM app_env WHERE app = ? AND name = ?');
    return this.#db.transaction(() => names.filter((n) => stmt.run(app, n).changes > 0))();
  }

  /** Variable names with their last change time. */
  names(app: string): { name: string; updatedAt: number }[] {
    return (
      this.#db.prepare('SELECT name, updated_at FROM app_env WHERE app = ? ORDER BY name').all(app) as {
        name: string;
        updated_at: number;
      }[]
    ).map((r) => ({ name: r.name, updatedAt: r.updated_at }));
  }

  /** Decrypted variables, for a child's environment or `--reveal`. */
  reveal(app: string): Record<string, string> {
    const rows = this.#db.prepare('SELECT name, nonce, value, tag FROM app_env WHERE app = ?').all(app) as {
      name: string;
      nonce: Buffer;
      value: Buffer;
      tag: Buffer;
    }[];
    const out: Record<string, string> = {};
    for (const r of rows) out[r.name] = this.#box.open(app, r.name, r);
    return out;
  }
}
