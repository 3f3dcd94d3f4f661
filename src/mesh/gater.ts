/**
 * The connection gater: revoked peers are refused at every stage; peers that are not admitted
 * may connect (they need to, to run admission) but are expelled after a grace period and then
 * refused for a while. Relaying is only for members.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface';
import { EXPELLED_FOR_MS } from './constants.ts';
import type { Membership } from './membership.ts';

/** Tracks peers expelled for not being admitted in time. */
export class Expulsions {
  readonly #until = new Map<string, number>();
  /** Refuse `peerId` for EXPELLED_FOR_MS. */
  expel(peerId: string, now = Date.now()): void {
    this.#until.set(peerId, now + EXPELLED_FOR_MS);
    if (this.#until.size > 10_000) {
      for (const [k, t] of this.#until) if (t < now) this.#until.delete(k);
    }
  }
  /** True while `peerId` is expelled. */
  isExpelled(peerId: string, now = Date.now()): boolean {
    const t = this.#until.get(peerId);
    if (t === undefined) return false;
    if (t < now) {
      this.#until.delete(peerId);
      return false;
    }
    return true;
  }
  /** Forgets an expulsion (the peer got admitted meanwhile). */
  forgive(peerId: string): void {
    this.#until.delete(peerId);
  }
}

/** Builds the gater over the membership view. */
export function createGater(membership: Membership, expulsions: Expulsions): ConnectionGater {
  const refused = (peer: PeerId) => {
    const id = peer.toString();
    return membership.isRevoked(id) || (!membership.isMember(id) && expulsions.isExpelled(id));
  };
  const notMember = (peer: PeerId) => !membership.isMember(peer.toString());
  return {
    // Our addresses are private by design (loopback, LAN, VPN): never filter by address class.
    denyDialMultiaddr: async () => false,
    denyDialPeer: async (peer) => refused(peer),
    denyInboundEncryptedConnection: async (peer) => refused(peer),
    denyOutboundEncryptedConnection: async (peer) => refused(peer),
    denyInboundUpgradedConnection: async (peer) => refused(peer),
    denyOutboundUpgradedConnection: async (peer) => refused(peer),
    // Relay only between members; a stranger gets no reservation and no relayed hop.
    denyInboundRelayReservation: async (peer) => notMember(peer),
    denyOutboundRelayedConnection: async (source, target) => notMember(source) || notMember(target),
    denyInboundRelayedConnection: async (relay, remote) => refused(relay) || refused(remote),
  };
}
