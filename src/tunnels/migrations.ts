/** Tables owned by the tunnels: exposed services and forwards. Never edit a shipped migration. */
import type { Migration } from '../store/index.ts';

/** The tunnels' migrations, in order. */
export const tunnelMigrations: Migration[] = [
  {
    id: 'tunnels-001',
    sql: `
      CREATE TABLE tunnel_services (
        name TEXT PRIMARY KEY,
        port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        created_at INTEGER NOT NULL
      );
      CREATE TABLE tunnel_forwards (
        id TEXT PRIMARY KEY,
        listen_host TEXT NOT NULL,
        listen_port INTEGER NOT NULL CHECK (listen_port BETWEEN 1 AND 65535),
        target TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (listen_host, listen_port)
      );
    `,
  },
];
