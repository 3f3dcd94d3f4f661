/** The mesh's tables. Numbered; never edit a shipped migration, add the next one. */
import type { Migration } from '../store/index.ts';

/** Migrations owned by the mesh. */
export const meshMigrations: Migration[] = [
  {
    id: 'mesh-001',
    sql: `
      CREATE TABLE members (
        peer_id     TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        tags        TEXT NOT NULL DEFAULT '[]',
        token_id    TEXT NOT NULL,
        joined_at   INTEGER NOT NULL,
        admitted_by TEXT NOT NULL,
        admission   TEXT NOT NULL,
        addrs       TEXT NOT NULL DEFAULT '[]',
        last_seen   INTEGER,
        revoked_at  INTEGER
      );
      CREATE UNIQUE INDEX members_live_name ON members(name) WHERE revoked_at IS NULL;
      CREATE INDEX members_token ON members(token_id);

      CREATE TABLE revocations (
        kind    TEXT NOT NULL,
        subject TEXT NOT NULL,
        at      INTEGER NOT NULL,
        blob    TEXT NOT NULL,
        PRIMARY KEY (kind, subject)
      );

      -- Tokens created on this node (the admin's): for 'token ls'. The token text itself is a
      -- secret and is not kept.
      CREATE TABLE tokens (
        id         TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        exp        INTEGER NOT NULL,
        uses       INTEGER NOT NULL,
        tags       TEXT NOT NULL DEFAULT '[]'
      );
    `,
  },
  {
    // Operator keys granted by the admin (issue 5); revocations live in `revocations` (kind 'operator').
    id: 'mesh-002',
    sql: `
      CREATE TABLE operator_grants (
        kid    TEXT PRIMARY KEY,
        pubkey TEXT NOT NULL,
        role   TEXT NOT NULL,
        tenant TEXT,
        exec   INTEGER NOT NULL DEFAULT 0,
        exp    INTEGER,
        at     INTEGER NOT NULL,
        blob   TEXT NOT NULL
      );
    `,
  },
  {
    // Self-certifying admissions (issue 12): when this node first saw each one (the token's
    // deadline and the settling of races are judged by it), and `lost`, set on a claim that lost
    // a conflict (name taken, token used up, a race): such rows are kept to be reported, and are
    // neither members nor passed on. A lost row does not hold its name.
    id: 'mesh-003',
    sql: `
      ALTER TABLE members ADD COLUMN first_seen INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE members ADD COLUMN lost TEXT;
      DROP INDEX members_live_name;
      CREATE UNIQUE INDEX members_live_name ON members(name) WHERE revoked_at IS NULL AND lost IS NULL;
    `,
  },
];
