/**
 * The session audit (table `shell_sessions`): a row when a session starts, completed when it
 * ends. A session the agent did not see end (it was killed) keeps `ended_at` empty; the next
 * start marks such rows `agent-stopped`.
 */
import type { Db } from '../store/index.ts';
import { MAX_SESSION_ROWS } from './constants.ts';

/** A session as `plexus audit sessions` shows it. */
export interface SessionEntry {
  id: string;
  kid: string;
  user: string;
  mode: 'pty' | 'pipe';
  command: string;
  startedAt: number;
  endedAt: number | null;
  exitCode: number | null;
  signal: string | null;
  /** `exit`, `idle`, `caller-left`, `input-refused`, `agent-stopped`. */
  reason: string | null;
  bytesIn: number;
  bytesOut: number;
  recorded: boolean;
}

interface Row {
  id: string;
  kid: string;
  user: string;
  mode: 'pty' | 'pipe';
  command: string;
  started_at: number;
  ended_at: number | null;
  exit_code: number | null;
  signal: string | null;
  reason: string | null;
  bytes_in: number;
  bytes_out: number;
  recorded: number;
}

/** The repository of session rows. */
export class SessionLog {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Writes the start of a session. */
  begin(
    e: Pick<SessionEntry, 'id' | 'kid' | 'user' | 'mode' | 'command' | 'recorded'>,
    now = Date.now(),
  ): void {
    this.#db
      .prepare(
        'INSERT INTO shell_sessions (id, kid, user, mode, command, started_at, recorded) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(e.id, e.kid, e.user, e.mode, e.command.slice(0, 1024), now, e.recorded ? 1 : 0);
    this.#db
      .prepare('DELETE FROM shell_sessions WHERE rowid <= (SELECT MAX(rowid) FROM shell_sessions) - ?')
      .run(MAX_SESSION_ROWS);
  }

  /** Writes how a session ended. */
  end(
    id: string,
    e: Pick<SessionEntry, 'exitCode' | 'signal' | 'reason' | 'bytesIn' | 'bytesOut'>,
    now = Date.now(),
  ): void {
    this.#db
      .prepare(
        `UPDATE shell_sessions SET ended_at = ?, exit_code = ?, signal = ?, reason = ?, bytes_in = ?, bytes_out = ?
         WHERE id = ?`,
      )
      .run(now, e.exitCode, e.signal, e.reason, e.bytesIn, e.bytesOut, id);
  }

  /** Marks sessions a previous agent process never saw end. */
  closeOrphans(now = Date.now()): void {
    this.#db
      .prepare("UPDATE shell_sessions SET ended_at = ?, reason = 'agent-stopped' WHERE ended_at IS NULL")
      .run(now);
  }

  /** The newest `limit` sessions, newest first, or the one with `id`. */
  list(opts: { limit?: number; id?: string } = {}): SessionEntry[] {
    const rows = (
      opts.id
        ? this.#db.prepare('SELECT * FROM shell_sessions WHERE id = ?').all(opts.id)
        : this.#db
            .prepare('SELECT * FROM shell_sessions ORDER BY started_at DESC, rowid DESC LIMIT ?')
            .all(opts.limit ?? 50)
    ) as Row[];
    return rows.map((r) => ({
      id: r.id,
      kid: r.kid,
      user: r.user,
      mode: r.mode,
      command: r.command,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      exitCode: r.exit_code,
      signal: r.signal,
      reason: r.reason,
      bytesIn: r.bytes_in,
      bytesOut: r.bytes_out,
      recorded: r.recorded === 1,
    }));
  }
}
