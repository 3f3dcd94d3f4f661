/**
 * The host subsystem (issue 18): what the agent installs and runs on the host beside apps. The
 * host-daemon runner (apt, and systemd or the agent's own supervisor), the Caddy edge that puts
 * apps on the internet under their domains, and services (Redis, PostgreSQL, Node.js).
 * docs/edge.md describes them.
 */

export type { DaemonSpec, DaemonStatus } from './daemon-spec.ts';
export * from './errors.ts';
export { HostDaemons, type HostDaemonsInit } from './host-daemons.ts';
export { hostMigrations } from './migrations.ts';
