/**
 * The host subsystem (issue 18): what the agent installs and runs on the host beside apps. The
 * host-daemon runner (apt, and systemd or the agent's own supervisor), the Caddy edge that puts
 * apps on the internet under their domains, and services (Redis, PostgreSQL, Node.js).
 * docs/edge.md describes them. It sits above workloads: its daemons run under the workloads'
 * process supervisor, and the edge is a TrafficSwitch of workloads (src/workloads/traffic.ts).
 */
import { join } from 'node:path';
import type { Logger } from '../logging/index.ts';
import type { Db } from '../store/index.ts';
import type { AppUpstreams } from '../workloads/traffic.ts';
import { Edge } from './edge.ts';
import { HostDaemons } from './host-daemons.ts';
import { Services, type ServicesComponents } from './services.ts';

export type { DaemonSpec, DaemonStatus } from './daemon-spec.ts';
export { interfaceAddresses, type Resolver, systemResolver } from './dns-check.ts';
export { edgeForTelemetry } from './domains.ts';
export { Edge } from './edge.ts';
export { edgeActions } from './edge-actions.ts';
export * from './errors.ts';
export { HostDaemons, type HostDaemonsInit } from './host-daemons.ts';
export { hostMigrations } from './migrations.ts';
export { serviceActions } from './service-actions.ts';
export { Services } from './services.ts';

/** Options of the host subsystem. */
export interface HostInit {
  /** The agent's data dir: the edge lives in DATA/edge, daemon logs in DATA/host/logs. */
  dataDir: string;
  /** Tests: shorter checks and restart backoff. */
  edgeCheckMs?: number;
}

/** The host subsystem's parts, started and stopped together. */
export interface Host {
  daemons: HostDaemons;
  edge: Edge;
  services: Services;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds the daemon runner and the edge, without I/O. */
export function createHost(
  init: HostInit,
  components: { db: Db; logger: Logger; upstreams: AppUpstreams } & Pick<
    ServicesComponents,
    'appExists' | 'setAppEnv'
  >,
): Host {
  const daemons = new HostDaemons(
    { logDir: join(init.dataDir, 'host', 'logs') },
    { db: components.db, logger: components.logger.child({ part: 'daemons' }) },
  );
  const edge = new Edge(
    { dir: join(init.dataDir, 'edge'), ...(init.edgeCheckMs ? { checkMs: init.edgeCheckMs } : {}) },
    {
      db: components.db,
      logger: components.logger.child({ part: 'edge' }),
      daemons,
      upstreams: components.upstreams,
    },
  );
  const services = new Services({
    db: components.db,
    logger: components.logger.child({ part: 'services' }),
    daemons,
    appExists: components.appExists,
    setAppEnv: components.setAppEnv,
  });
  return {
    daemons,
    edge,
    services,
    async start() {
      await daemons.start();
      await edge.start();
    },
    async stop() {
      await edge.stop();
      await daemons.stop();
    },
  };
}
