/**
 * The command subsystem's tables (issue 5). Numbered; never edit a shipped migration, add the
 * next one. The id keeps its 'api-' prefix from when commands lived in src/api: it is stored in
 * every node's database, and a new id would run the migration again.
 */
import type { Migration } from '../store/index.ts';

/** Migrations owned by src/commands. */
export const commandMigrations: Migration[] = [
  {
    id: 'api-001',
    sql: `
      -- Ids of accepted commands, kept until they expire so a replay fails even after a restart.
      CREATE TABLE command_ids (
        id  TEXT PRIMARY KEY,
        exp INTEGER NOT NULL
      );
      CREATE INDEX command_ids_exp ON command_ids(exp);

      -- Every accepted or refused command seen by this node.
      CREATE TABLE audit (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        at      INTEGER NOT NULL,
        id      TEXT,
        kid     TEXT,
        action  TEXT,
        target  TEXT,
        verdict TEXT NOT NULL,
        code    TEXT,
        detail  TEXT,
        via     TEXT NOT NULL,
        outcome TEXT
      );
      CREATE INDEX audit_id ON audit(id);
    `,
  },
  {
    id: 'api-002',
    sql: `
      -- Refusal folding (issue 12): repeated refusals from one source with one code share a row.
      -- count: how many refusals the row stands for (1 for every other row); source: the remote
      -- address (http), the relaying peer (mesh) or 'socket'; last_at: the latest folded one.
      ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE audit ADD COLUMN source TEXT;
      ALTER TABLE audit ADD COLUMN last_at INTEGER;
    `,
  },
];
