/** The workload manager's tables. Numbered; never edit a shipped migration, add the next one. */
import type { Migration } from '../store/index.ts';

/** Migrations owned by workloads. */
export const workloadsMigrations: Migration[] = [
  {
    id: 'workloads-001',
    sql: `
      -- One row per app. 'spec' is the effective run spec (cmd, port, health, restart) as JSON;
      -- 'desired' is what the operator asked for, 'status' what the supervisor last saw.
      CREATE TABLE apps (
        name           TEXT PRIMARY KEY,
        tenant         TEXT,
        spec           TEXT NOT NULL,
        desired        TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),
        status         TEXT NOT NULL,
        release        TEXT,
        pid            INTEGER,
        pid_start      TEXT,
        started_at     INTEGER,
        restarts       INTEGER NOT NULL DEFAULT 0,
        env_changed_at INTEGER,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
      );

      CREATE TABLE releases (
        app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        id         TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        source     TEXT NOT NULL,
        sha256     TEXT NOT NULL,
        bytes      INTEGER NOT NULL,
        spec       TEXT NOT NULL,
        status     TEXT NOT NULL CHECK (status IN ('ready', 'active', 'failed', 'pruned')),
        PRIMARY KEY (app, id)
      );

      -- Every value is AES-256-GCM ciphertext (nonce and tag kept beside it); never plaintext.
      CREATE TABLE app_env (
        app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        nonce      BLOB NOT NULL,
        value      BLOB NOT NULL,
        tag        BLOB NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (app, name)
      );

      -- The webhook secret of an app, encrypted like env values.
      CREATE TABLE app_hooks (
        app        TEXT PRIMARY KEY REFERENCES apps(name) ON DELETE CASCADE,
        nonce      BLOB NOT NULL,
        value      BLOB NOT NULL,
        tag        BLOB NOT NULL,
        created_at INTEGER NOT NULL
      );

      -- Signatures of accepted webhook calls, kept until their timestamp leaves the window, so a
      -- replay is refused even after a restart.
      CREATE TABLE hook_seen (
        sig        TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL
      );

      -- The events log survives 'rm' on purpose: it is the history of what happened.
      CREATE TABLE app_events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        app     TEXT NOT NULL,
        at      INTEGER NOT NULL,
        kind    TEXT NOT NULL,
        release TEXT,
        detail  TEXT
      );
      CREATE INDEX app_events_app ON app_events(app, id);
    `,
  },
  {
    id: 'workloads-002',
    sql: `
      -- The Unix user an app runs as (issue 13). NULL for an app deployed before apps had users
      -- of their own (it ran as the agent's user, root on a server): it moves to its own user
      -- on its next deploy or (re)start, and the app's event log says so.
      ALTER TABLE apps ADD COLUMN run_as TEXT;
      -- Capabilities an admin gave the app (JSON array of APP_CAPABILITIES names); none when NULL.
      ALTER TABLE apps ADD COLUMN capabilities TEXT;
    `,
  },
  {
    id: 'workloads-003',
    sql: `
      -- The private port the app's live release listens on (issue 18): the kernel redirects the
      -- app's declared port to this one. NULL for an app not deployed since, or deployed without
      -- the redirect (its process holds the declared port itself until its next deploy).
      ALTER TABLE apps ADD COLUMN live_port INTEGER;
    `,
  },
];
