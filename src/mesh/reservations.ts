/**
 * Relay reservations for a node behind NAT (issue 5; docs/mesh.md, relays). A node with
 * `mesh.reservations: N` (N ≤ 4, 2 recommended behind NAT) keeps reservations on N members that
 * serve circuit relay and that it reaches over a direct connection, and replaces a relay that
 * goes away on the next pass (every few seconds). It also tries, now and then, to replace a
 * relayed link to a member by a direct one that it dials out itself: what DCUtR does for an
 * inbound relayed connection at the moment it opens, retried for when the path opens up later.
 *
 * Why not libp2p's `/p2p-circuit` listen addresses: those start relay discovery through a DHT
 * random walk, which spins without yielding while the routing table is empty (a fresh node, or
 * one that lost every peer) and freezes the agent. Reserving on a named relay
 * (`/…/p2p/RELAY/p2p-circuit`) needs no discovery.
 */
import type { Connection } from '@libp2p/interface';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import type { Logger } from '../logging/index.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';

/** The circuit relay v2 hop protocol a relay serves. */
const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop';

/** Relay peer IDs this node currently holds a reservation on (from its own circuit addresses). */
export function currentRelays(node: PlexusLibp2p): Set<string> {
  const relays = new Set<string>();
  for (const addr of node.getMultiaddrs()) {
    const text = addr.toString();
    const at = text.indexOf('/p2p-circuit');
    if (at < 0) continue;
    const relay = /\/p2p\/([^/]+)$/.exec(text.slice(0, at))?.[1];
    if (relay) relays.add(relay);
  }
  return relays;
}

/**
 * libp2p has no public way to add a listen address after start; its transport manager (on the
 * node's components, present at runtime but not in the public type) is the supported internals.
 */
function transportManager(node: PlexusLibp2p): { listen(addrs: Multiaddr[]): Promise<void> } {
  return (
    node as unknown as { components: { transportManager: { listen(addrs: Multiaddr[]): Promise<void> } } }
  ).components.transportManager;
}

const isDirect = (c: Connection) => !c.remoteAddr.toString().includes('/p2p-circuit') && c.status === 'open';

/** How long to wait before dialling a member directly again after that failed. */
const DIRECT_RETRY_MS = 20_000;
const directRetry = new WeakMap<PlexusLibp2p, Map<string, number>>();

/** Dials members we only reach through a relay on their direct addresses (backing off on failure). */
export async function upgradeRelayed(
  node: PlexusLibp2p,
  membership: Membership,
  logger: Logger,
): Promise<void> {
  const retry = directRetry.get(node) ?? new Map<string, number>();
  directRetry.set(node, retry);
  const now = Date.now();
  const direct = new Set<string>();
  const relayed = new Map<string, Connection['remotePeer']>();
  for (const conn of node.getConnections()) {
    const id = conn.remotePeer.toString();
    if (!membership.isMember(id) || conn.status !== 'open') continue;
    if (isDirect(conn)) direct.add(id);
    else relayed.set(id, conn.remotePeer);
  }
  await Promise.all(
    [...relayed].map(async ([id, peer]) => {
      if (direct.has(id) || (retry.get(id) ?? 0) > now) return;
      const addrs = await node.peerStore
        .get(peer)
        .then((p) =>
          p.addresses.map((a) => a.multiaddr).filter((a) => !a.toString().includes('/p2p-circuit')),
        )
        .catch(() => []);
      if (addrs.length === 0) return;
      try {
        await node.dial(
          addrs.map((a) => (a.toString().includes('/p2p/') ? a : a.encapsulate(`/p2p/${id}`))),
          { signal: AbortSignal.timeout(5000), force: true },
        );
        retry.delete(id);
        logger.info({ peer: id }, 'replaced a relayed link by a direct one');
      } catch {
        retry.set(id, Date.now() + DIRECT_RETRY_MS);
      }
    }),
  );
}

/** One pass: tops reservations up to `wanted` with directly connected member relays. */
export async function keepReservations(
  node: PlexusLibp2p,
  membership: Membership,
  wanted: number,
  logger: Logger,
): Promise<void> {
  await upgradeRelayed(node, membership, logger);
  const held = currentRelays(node);
  if (held.size >= wanted) return;
  const seen = new Set<string>(held);
  for (const conn of node.getConnections()) {
    if (held.size >= wanted) return;
    const id = conn.remotePeer.toString();
    if (seen.has(id) || !isDirect(conn) || !membership.isMember(id)) continue;
    seen.add(id);
    const protocols = await node.peerStore
      .get(conn.remotePeer)
      .then((p) => p.protocols)
      .catch(() => [] as string[]);
    if (!protocols.includes(HOP_PROTOCOL)) continue;
    const addr = conn.remoteAddr.toString().split('/p2p/')[0];
    try {
      await transportManager(node).listen([multiaddr(`${addr}/p2p/${id}/p2p-circuit`)]);
      held.add(id);
      logger.info({ relay: id }, 'holding a relay reservation');
    } catch (err) {
      logger.debug({ err, relay: id }, 'relay reservation failed');
    }
  }
  if (held.size < wanted) logger.debug({ held: held.size, wanted }, 'not enough relays for reservations yet');
}
