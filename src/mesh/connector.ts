/**
 * Connections: keeps a connection to every live member. Every CONNECT_INTERVAL_MS it dials the
 * members it is not connected to (the bootstrap list first when no member is connected,
 * exponential backoff per member, DHT lookups late and rarely). Strangers never get a
 * connection: the gater refuses any peer that is not a member (gater.ts).
 */
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { Logger } from '../logging/index.ts';
import { LOOKUP_DELAY_MS, LOOKUP_INTERVAL_MS, MAX_REDIAL_BACKOFF_MS } from './constants.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';

/** What the connector uses. */
export interface ConnectorComponents {
  node: PlexusLibp2p;
  membership: Membership;
  /** Multiaddrs of the network's bootstrap nodes (from the network file). */
  bootstrap: readonly string[];
  logger: Logger;
}

interface DialState {
  failures: number;
  nextAt: number;
}

/** Dials every member. */
export class Connector {
  readonly #c: ConnectorComponents;
  readonly #dials = new Map<string, DialState>();
  /** When each member with no known address may next be looked up in the DHT. */
  readonly #lookups = new Map<string, number>();
  #stopping = false;

  constructor(components: ConnectorComponents) {
    this.#c = components;
  }

  /** Stops dialling. */
  stop(): void {
    this.#stopping = true;
  }

  /** A member's connection opened: forget its redial backoff and pending lookup. */
  connected(peerId: string): void {
    this.#dials.delete(peerId);
    this.#lookups.delete(peerId);
  }

  /** Seeds the peer store with the members' stored addresses, so a restarted node reaches any known peer. */
  async seedPeerStore(): Promise<void> {
    const { node, membership, logger } = this.#c;
    const self = node.peerId.toString();
    for (const m of membership.list()) {
      if (m.peerId === self || m.addrs.length === 0) continue;
      try {
        await node.peerStore.merge(peerIdFromString(m.peerId), {
          multiaddrs: m.addrs.map((a) => multiaddr(a)),
        });
      } catch (err) {
        logger.debug({ err, peer: m.peerId }, 'ignoring stored addresses');
      }
    }
  }

  /** Dials every live member we are not connected to (the bootstrap list first, if need be). */
  async connectAll(): Promise<void> {
    const { node, membership, logger } = this.#c;
    if (this.#stopping) return;
    const self = node.peerId.toString();
    const memberConnected = () => node.getPeers().some((p) => membership.isMember(p.toString()));
    if (!memberConnected()) {
      // Nothing connected yet (fresh start, or every known address stale): the bootstrap list
      // first. Dialling members by peer ID at the same time would join those dials and fail
      // them together, since a fresh node knows no addresses and has no DHT peers to ask.
      await Promise.all(
        this.#c.bootstrap
          .filter((addr) => !addr.includes(`/p2p/${self}`))
          .map((addr) =>
            node
              .dial(multiaddr(addr), { signal: AbortSignal.timeout(5000) })
              .catch((err) => logger.debug({ addr, err: err.message }, 'bootstrap dial failed')),
          ),
      );
    }
    const connected = new Set(node.getPeers().map((p) => p.toString()));
    const canRoute = memberConnected();
    const now = Date.now();
    const targets = membership.livePeerIds().filter((id) => id !== self && !connected.has(id));
    await Promise.all(
      targets.map(async (id) => {
        const st = this.#dials.get(id) ?? { failures: 0, nextAt: 0 };
        if (st.nextAt > now) return;
        const peer = peerIdFromString(id);
        // With no stored address, a dial is a DHT lookup. A member we know no address of is
        // usually one that was just admitted and is not up yet: it will dial us (admission gave
        // it everyone's addresses). Every node looking it up at once, and again on each pass,
        // flooded a 20-node mesh with DHT walks that starved the joining agent of CPU
        // (bench/join.ts: 8 s → 1.x s). So: look up late, and rarely.
        if (!(await this.#hasAddrs(peer)) && !(canRoute && this.#lookupDue(id, now))) return;
        try {
          await node.dial(peer, { signal: AbortSignal.timeout(5000) });
          this.#dials.delete(id);
        } catch {
          st.failures++;
          st.nextAt = Date.now() + Math.min(MAX_REDIAL_BACKOFF_MS, 500 * 2 ** Math.min(st.failures, 10));
          this.#dials.set(id, st);
        }
      }),
    );
  }

  /** A member we are not connected to told us where it listens: remember, and dial it. */
  async learnAddrs(peerId: string, addrs: string[]): Promise<void> {
    try {
      const peer = peerIdFromString(peerId);
      await this.#c.node.peerStore.merge(peer, { multiaddrs: addrs.map((a) => multiaddr(a)) });
      this.#c.membership.touch(peerId, { addrs });
      await this.#c.node.dial(peer, { signal: AbortSignal.timeout(5000) });
    } catch (err) {
      this.#c.logger.debug({ err, peer: peerId }, 'could not use advertised addresses');
    }
  }

  /** True when a DHT lookup of a member with no known address may run now (see connectAll). */
  #lookupDue(id: string, now: number): boolean {
    const at = this.#lookups.get(id);
    if (at === undefined) {
      this.#lookups.set(id, now + LOOKUP_DELAY_MS);
      return false;
    }
    if (at > now) return false;
    this.#lookups.set(id, now + LOOKUP_INTERVAL_MS);
    return true;
  }

  async #hasAddrs(peer: PeerId): Promise<boolean> {
    try {
      return (await this.#c.node.peerStore.get(peer)).addresses.length > 0;
    } catch {
      return false;
    }
  }
}

/**
 * Where each member listens, handed to a joiner so that its agent can dial every member at once
 * instead of discovering them one by one. Unsigned hints: a wrong one costs a failed dial.
 */
export function addressHints(
  node: PlexusLibp2p | undefined,
  membership: Membership,
): Record<string, string[]> {
  const hints: Record<string, string[]> = {};
  if (node)
    hints[node.peerId.toString()] = node
      .getMultiaddrs()
      .map((a) => a.toString())
      .slice(0, 16);
  for (const m of membership.list()) {
    if (m.addrs.length && !hints[m.peerId]) hints[m.peerId] = m.addrs.slice(0, 16);
  }
  return hints;
}
