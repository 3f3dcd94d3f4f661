/**
 * Traffic between servers (DESIGN.md): exposed services, `/plexus/tcp/1.0.0` tunnels,
 * forwards kept in SQLite, and the SOCKS5 proxy. `createTunnelSubsystem` builds them all over a
 * started mesh; the composition root registers its actions and stops it.
 */
import type { Logger } from '../logging/index.ts';
import type { Mesh } from '../mesh/mesh.ts';
import type { Db } from '../store/index.ts';
import { tunnelActions } from './actions.ts';
import { ForwardRepo } from './forward-repo.ts';
import { Forwards } from './forwards.ts';
import { ServiceDirectory, ServiceRepo } from './services.ts';
import { SocksServer } from './socks.ts';
import { Tunnels, type TunnelsInit } from './tunnels.ts';

export * from './constants.ts';
export * from './errors.ts';
export { type ForwardView, parseListen } from './forwards.ts';
export { encodeFrame, parseReply, parseRequest, type TunnelReply, type TunnelRequest } from './header.ts';
export { tunnelMigrations } from './migrations.ts';
export { type Service, ServiceDirectory, type ServiceProvider, ServiceRepo } from './services.ts';
export { SocksReply, socksReplyFor } from './socks.ts';
export { splice } from './splice.ts';
export { formatTarget, parseTarget, socksTarget, type Target } from './target.ts';
export { type OpenedTunnel, type TunnelCounters, Tunnels, type TunnelsInit } from './tunnels.ts';
export { ForwardRepo, Forwards, SocksServer, tunnelActions };

/** Options of the tunnel subsystem. */
export interface TunnelSubsystemInit extends TunnelsInit {
  /** SOCKS5 listen address (`HOST:PORT`) or `off` (config `socks.listen`). */
  socksListen: string;
}

/**
 * Where the data listener binds, from config `tunnels.dataListen`: `auto` takes the host of the
 * first IP mesh listen address with any free port; `off` (or no IP listen address) gives none.
 */
export function dataListenOf(
  setting: string,
  meshListen: string[],
): { host: string; port: number } | undefined {
  if (setting === 'off') return undefined;
  if (setting !== 'auto') {
    const at = setting.lastIndexOf(':');
    return { host: setting.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(setting.slice(at + 1)) };
  }
  for (const addr of meshListen) {
    const m = /^\/ip([46])\/([^/]+)\/tcp\//.exec(addr);
    if (m) return { host: m[2], port: 0 };
  }
  return undefined;
}

/** The running tunnel subsystem. */
export interface TunnelSubsystem {
  services: ServiceDirectory;
  tunnels: Tunnels;
  forwards: Forwards;
  socks?: SocksServer;
  actions: ReturnType<typeof tunnelActions>;
  stop(): Promise<void>;
}

/**
 * Starts the tunnel service, the stored forwards and the SOCKS proxy over a started mesh.
 * A SOCKS port that cannot be bound fails the start: the operator chose it and must fix it.
 */
export async function createTunnelSubsystem(
  init: TunnelSubsystemInit,
  components: { mesh: Mesh; db: Db; logger: Logger },
): Promise<TunnelSubsystem> {
  const { mesh, db, logger } = components;
  const services = new ServiceDirectory(new ServiceRepo(db), mesh.name);
  const tunnels = new Tunnels(init, {
    libp2p: mesh.libp2p,
    resolve: (name) => mesh.resolve(name),
    isMember: (peerId) => mesh.membership.isMember(peerId),
    selfPeerId: mesh.peerId,
    selfName: mesh.name,
    services,
    logger,
  });
  const forwards = new Forwards({ repo: new ForwardRepo(db), tunnels, logger });
  // A revoked peer loses its tunnels and data tickets at once, like its mesh connections.
  const onRevoked = (r: { kind: string; subject: string }) => {
    if (r.kind === 'node') tunnels.dropPeer(r.subject);
  };
  mesh.membership.on('revoked', onRevoked);
  const socks =
    init.socksListen === 'off'
      ? undefined
      : new SocksServer({ listen: init.socksListen }, { tunnels, logger });
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  stops.push(async () => {
    mesh.membership.off('revoked', onRevoked);
  });
  try {
    await tunnels.start();
    stops.push(() => tunnels.stop());
    await forwards.start();
    stops.push(() => forwards.stop());
    if (socks) {
      await socks.start();
      stops.push(() => socks.stop());
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    services,
    tunnels,
    forwards,
    socks,
    actions: tunnelActions({ services, forwards, tunnels, socks }),
    stop,
  };
}
