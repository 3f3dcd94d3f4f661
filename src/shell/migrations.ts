/** The shell subsystem's tables (issue 16). Numbered; never edit a shipped migration. */
import type { Migration } from '../store/index.ts';

/** Migrations owned by src/shell. */
export const shellMigrations: Migration[] = [
  {
    id: 'shell-001',
    sql: `
      -- One row per interactive session run on this node (plexus shell, exec -i/-t, cp): who, as
      -- whom, what, when, how it ended and how many bytes went each way. Never what was typed.
      CREATE TABLE shell_sessions (
        id         TEXT PRIMARY KEY,
        kid        TEXT NOT NULL,
        user       TEXT NOT NULL,
        mode       TEXT NOT NULL,
        command    TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at   INTEGER,
        exit_code  INTEGER,
        signal     TEXT,
        reason     TEXT,
        bytes_in   INTEGER NOT NULL DEFAULT 0,
        bytes_out  INTEGER NOT NULL DEFAULT 0,
        recorded   INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX shell_sessions_started ON shell_sessions(started_at);
    `,
  },
];
