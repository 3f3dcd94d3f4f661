/**
 * Relay reservations for a node behind NAT (issue 5; DESIGN.md, Mesh: relays). A node with
 * `mesh.reservations: N` (N ≤ 4, 2 recommended behind NAT) keeps reservations on N members that
 * serve circuit relay and that it reaches over a direct connection, and replaces a relay that
 * goes away on the next pass (every few seconds).
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

/** One pass: tops reservations up to `wanted` with directly connected member relays. */
export async function keepReservations(
  node: PlexusLibp2p,
  membership: Membership,
  wanted: number,
  logger: Logger,
): Promise<void> {
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
