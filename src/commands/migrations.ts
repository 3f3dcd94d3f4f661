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
];
