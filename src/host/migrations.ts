/** The host subsystem's tables. Numbered; never edit a shipped migration, add the next one. */
import type { Migration } from '../store/index.ts';

/** Migrations owned by the host subsystem. */
export const hostMigrations: Migration[] = [
  {
    id: 'host-001',
    sql: `
      -- Daemons the agent runs on the host beside apps (Caddy, Redis, PostgreSQL). 'spec' is how
      -- it starts them (JSON); pid and pid_start let it adopt them again after an agent restart
      -- when it supervises them itself (no systemd as PID 1).
      CREATE TABLE host_daemons (
        name       TEXT PRIMARY KEY,
        spec       TEXT NOT NULL,
        wanted     INTEGER NOT NULL,
        pid        INTEGER,
        pid_start  TEXT,
        started_at INTEGER,
        restarts   INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    id: 'host-002',
    sql: `
      -- The edge's settings (one row once 'plexus edge install' ran) and the domains it serves.
      CREATE TABLE edge (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        http_port   INTEGER NOT NULL,
        https_port  INTEGER NOT NULL,
        issuer      TEXT NOT NULL CHECK (issuer IN ('acme', 'internal')),
        email       TEXT,
        packages    TEXT NOT NULL,
        installed_at INTEGER NOT NULL
      );
      -- cert_* is what the last check of the served certificate found.
      CREATE TABLE domains (
        host         TEXT PRIMARY KEY,
        app          TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        cert_status  TEXT NOT NULL DEFAULT 'pending',
        cert_expires INTEGER,
        cert_issuer  TEXT,
        cert_error   TEXT,
        checked_at   INTEGER
      );
      CREATE INDEX domains_app ON domains (app);
    `,
  },
  {
    id: 'host-003',
    sql: `
      -- Services installed with 'plexus service install'. 'packages' lists what the install
      -- added (JSON), so that 'service rm' removes those and nothing the host had before.
      CREATE TABLE host_services (
        name         TEXT PRIMARY KEY,
        packages     TEXT NOT NULL,
        added        TEXT NOT NULL,
        installed_at INTEGER NOT NULL
      );
      -- PostgreSQL roles made for apps ('--for APP'); the password lives only in the app's env.
      CREATE TABLE service_grants (
        service    TEXT NOT NULL,
        app        TEXT NOT NULL,
        role       TEXT NOT NULL,
        db         TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (service, app)
      );
    `,
  },
  {
    id: 'host-004',
    sql: `
      -- An ACME CA of the operator's choosing ('edge install --acme-ca URL'): a staging or private
      -- CA instead of Let's Encrypt, with the PEM root it is trusted by ('--acme-ca-root FILE').
      ALTER TABLE edge ADD COLUMN acme_ca TEXT;
      ALTER TABLE edge ADD COLUMN acme_ca_root TEXT;
    `,
  },
];
