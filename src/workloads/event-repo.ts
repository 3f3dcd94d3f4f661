/** `app_events`: what happened to each app and when (deploy, rollback, crash, restart, …). */
import type { Db } from '../store/index.ts';
import { KEEP_EVENTS_PER_APP } from './constants.ts';

/** Kinds of event. */
export type AppEventKind =
  | 'deploy'
  | 'deploy-failed'
  | 'rollback'
  | 'start'
  | 'stop'
  | 'restart'
  | 'crash'
  | 'failed'
  | 'adopt'
  | 'env'
  | 'user'
  | 'remove';

/** One event. `detail` never holds secret values. */
export interface AppEvent {
  id: number;
  app: string;
  at: number;
  kind: AppEventKind;
  release: string | null;
  detail: string | null;
}

/** Repository of events. */
export class EventRepo {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Appends an event and trims the app's history to the newest KEEP_EVENTS_PER_APP. */
  add(app: string, kind: AppEventKind, release?: string | null, detail?: string): AppEvent {
    const at = Date.now();
    const info = this.#db
      .prepare('INSERT INTO app_events (app, at, kind, release, detail) VALUES (?, ?, ?, ?, ?)')
      .run(app, at, kind, release ?? null, detail ?? null);
    const id = Number(info.lastInsertRowid);
    if (id % 50 === 0) {
      this.#db
        .prepare(
          `DELETE FROM app_events WHERE app = ? AND id <= (
             SELECT id FROM app_events WHERE app = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
        )
        .run(app, app, KEEP_EVENTS_PER_APP);
    }
    return { id, app, at, kind, release: release ?? null, detail: detail ?? null };
  }

  /** The newest `limit` events of an app (or of all apps), newest last. */
  list(app: string | undefined, limit = 50): AppEvent[] {
    const rows = (
      app
        ? this.#db.prepare('SELECT * FROM app_events WHERE app = ? ORDER BY id DESC LIMIT ?').all(app, limit)
        : this.#db.prepare('SELECT * FROM app_events ORDER BY id DESC LIMIT ?').all(limit)
    ) as AppEvent[];
    return rows.reverse();
  }
}
