/**
 * Traffic between servers (docs/tunnels.md): exposed services, `/plexus/tcp/1.0.0` tunnels,
 * forwards kept in SQLite, and the SOCKS5 proxy. Where things are:
 * - client.ts opens tunnels and picks their carrier; server.ts serves them (only exposed
 *   services are reachable); ledger.ts holds their limits and counters;
 * - carriers/stream/ carries a tunnel on a libp2p stream, carriers/data/ on a TCP connection of
 *   its own, in TLS 1.3 keyed by a ticket (carriers/data/tls.ts);
 * - services.ts, forwards.ts, socks.ts and targets.ts are what users see.
 * `createTunnels` builds them without I/O; `start()` opens their sockets over a started mesh.
 */
import type { Startable } from '../core/lifecycle.ts';
import type { Logger } from '../logging/index.ts';
import type { Mesh } from '../mesh/index.ts';
import type { Db } from '../store/index.ts';
import { tunnelActions } from './actions.ts';
import { ForwardRepo } from './forward-repo.ts';
import { Forwards } from './forwards.ts';
import { ServiceDirectory, ServiceRepo } from './services.ts';
import { SocksServer } from './socks.ts';
import { Tunnels, type TunnelsInit } from './tunnels.ts';

export type { OpenedTunnel } from './carriers/carrier.ts';
export { dataListenOf } from './carriers/data/listener.ts';
export * from './constants.ts';
export * from './errors.ts';
export { type ForwardView, parseListen } from './forwards.ts';
export { parseReply, parseRequest, type TunnelReply, type TunnelRequest } from './handshake.ts';
export type { TunnelCounters } from './ledger.ts';
export { tunnelMigrations } from './migrations.ts';
export { type Service, ServiceDirectory, type ServiceProvider, ServiceRepo } from './services.ts';
export { SocksReply, socksReplyFor } from './socks.ts';
export { formatTarget, parseTarget, socksTarget, type Target } from './targets.ts';
export { Tunnels, type TunnelsInit } from './tunnels.ts';
export { ForwardRepo, Forwards, SocksServer, tunnelActions };

/** Options of the tunnel subsystem. */
export interface TunnelSubsystemInit extends TunnelsInit {
  /** SOCKS5 listen address (`HOST:PORT`) or `off` (config `socks.listen`). */
  socksListen: string;
}

/** What the tunnel subsystem uses. The mesh must be started before `start()`. */
export interface TunnelSubsystemComponents {
  mesh: Mesh;
  db: Db;
  logger: Logger;
}

/** The tunnel subsystem: its parts, and its actions for the composition root to register. */
export interface TunnelSubsystem extends Startable {
  services: ServiceDirectory;
  tunnels: Tunnels;
  forwards: Forwards;
  socks?: SocksServer;
  actions: ReturnType<typeof tunnelActions>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Builds the tunnel service, the stored forwards and the SOCKS proxy; no I/O until `start()`.
 * `start()` registers `/plexus/tcp/1.0.0`, binds the data listener, listens on the stored
 * forwards, then on the SOCKS port. A SOCKS port that cannot be bound fails the start: the
 * operator chose it and must fix it. `stop()` releases what was started, in reverse.
 */
export function createTunnels(
  init: TunnelSubsystemInit,
  components: TunnelSubsystemComponents,
): TunnelSubsystem {
  const { mesh, db, logger } = components;
  const services = new ServiceDirectory(new ServiceRepo(db), mesh.name);
  const tunnels = new Tunnels(init, { mesh, services, logger });
  const forwards = new Forwards({ repo: new ForwardRepo(db), tunnels, logger });
  const socks =
    init.socksListen === 'off'
      ? undefined
      : new SocksServer({ listen: init.socksListen }, { tunnels, logger });
  // A revoked peer loses its tunnels and data tickets at once, like its mesh connections.
  const onRevoked = (r: { kind: string; subject: string }) => {
    if (r.kind === 'node') tunnels.dropPeer(r.subject);
  };
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => {});
  };
  const start = async () => {
    mesh.membership.on('revoked', onRevoked);
    stops.push(async () => {
      mesh.membership.off('revoked', onRevoked);
    });
    // Each part's stop is queued before its start: a part that fails half-way is still stopped.
    try {
      stops.push(() => tunnels.stop());
      await tunnels.start();
      stops.push(() => forwards.stop());
      await forwards.start();
      if (socks) {
        stops.push(() => socks.stop());
        await socks.start();
      }
    } catch (err) {
      await stop();
      throw err;
    }
  };
  return {
    services,
    tunnels,
    forwards,
    socks,
    actions: tunnelActions({ services, forwards, tunnels, socks }),
    start,
    stop,
  };
}
