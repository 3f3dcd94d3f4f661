/**
 * The mesh port's connection gater: members only. The swarm key (pnet) keeps out whoever does
 * not hold it; past it, Noise names the peer, and a peer that is not a live member is refused
 * right there, before any protocol runs: no identify, ping, DHT, gossip or sync answers a
 * stranger, nor a revoked node holding a copy of an old swarm key. Joining happens at the join
 * door (door.ts), not here. Relaying is only between members.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface';
import type { Membership } from './membership.ts';

/** Builds the gater over the membership view. */
export function createGater(membership: Membership): ConnectionGater {
  const refused = (peer: PeerId) => !membership.isMember(peer.toString());
  return {
    // Our addresses are private by design (loopback, LAN, VPN): never filter by address class.
    denyDialMultiaddr: async () => false,
    denyDialPeer: async (peer) => membership.isRevoked(peer.toString()),
    denyInboundEncryptedConnection: async (peer) => refused(peer),
    denyOutboundEncryptedConnection: async (peer) => refused(peer),
    denyInboundUpgradedConnection: async (peer) => refused(peer),
    denyOutboundUpgradedConnection: async (peer) => refused(peer),
    denyInboundRelayReservation: async (peer) => refused(peer),
    denyOutboundRelayedConnection: async (source, target) => refused(source) || refused(target),
    denyInboundRelayedConnection: async (relay, remote) => refused(relay) || refused(remote),
  };
}
