/** `app_hooks` and `hook_seen`: webhook secrets (sealed) and the signatures already accepted. */
import { randomBytes } from 'node:crypto';
import { type Db, durably } from '../store/index.ts';
import type { SecretBox } from './secrets.ts';

/** The AAD name under which hook secrets are sealed; not a valid env name, so no clash. */
const HOOK_AAD_NAME = '#hook';

/** Repository of webhook secrets and seen signatures. */
export class HookRepo {
  readonly #db: Db;
  readonly #box: SecretBox;

  constructor(db: Db, box: SecretBox) {
    this.#db = db;
    this.#box = box;
  }

  /** The app's secret, or undefined when none was made yet. */
  get(app: string): string | undefined {
    const r = this.#db.prepare('SELECT nonce, value, tag FROM app_hooks WHERE app = ?').get(app) as
      | { nonce: Buffer; value: Buffer; tag: Buffer }
      | undefined;
    return r && this.#box.open(app, HOOK_AAD_NAME, r);
  }

  /** Returns the existing secret, or makes one; `rotate` always makes a new one. */
  ensure(app: string, rotate: boolean): { secret: string; created: boolean } {
    const existing = rotate ? undefined : this.get(app);
    if (existing) return { secret: existing, created: false };
    // 32 random bytes: as strong as the HMAC-SHA256 key can use.
    const secret = `whsec_${randomBytes(32).toString('base64url')}`;
    const s = this.#box.seal(app, HOOK_AAD_NAME, secret);
    this.#db
      .prepare(
        `INSERT INTO app_hooks (app, nonce, value, tag, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (app) DO UPDATE SET nonce = excluded.nonce, value = excluded.value,
           tag = excluded.tag, created_at = excluded.created_at`,
      )
      .run(app, s.nonce, s.value, s.tag, Date.now());
    return { secret, created: true };
  }

  /** Records a signature; false if it was already seen (a replay). Expired ones are purged. */
  remember(sig: string, expiresAt: number): boolean {
    this.#db.prepare('DELETE FROM hook_seen WHERE expires_at < ?').run(Date.now());
    // On disk before the deploy starts: a signature lost to a power cut would let the same
    // webhook call deploy again within its timestamp window (issue 12).
    return durably(
      this.#db,
      () =>
        this.#db
          .prepare('INSERT OR IGNORE INTO hook_seen (sig, expires_at) VALUES (?, ?)')
          .run(sig, expiresAt).changes === 1,
    );
  }
}
