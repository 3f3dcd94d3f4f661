/**
 * What this node knows of every other member right now, as `plexus peers` and `plexus ping`
 * show it: when we last heard from it, how we are connected (direct, relayed or not at all),
 * the round-trip time, and its latest telemetry record.
 */
import type { Connection, PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { PeerUnreachableError } from './errors.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';
import { type PeerState, stateOf, type TelemetryBus, type TelemetryRecord } from './telemetry.ts';

/** How we are connected to a peer: `punched` is a direct connection a hole punch made (punch.ts). */
export type ConnectionPath = 'direct' | 'punched' | 'relayed' | 'none';

/** One row of `plexus peers`. */
export interface PeerView {
  name: string;
  peerId: string;
  state: PeerState;
  addrs: string[];
  connection: ConnectionPath;
  rttMs: number | null;
  lastSeen: number | null;
  tags: string[];
  telemetry?: TelemetryRecord;
}

/** The outcome of `plexus ping`. */
export interface PingResult {
  name: string;
  peerId: string;
  sent: number;
  received: number;
  lost: number;
  rttMs: number[];
  connection: ConnectionPath;
}

/** What the peer directory uses. */
export interface PeerDirectoryComponents {
  node: PlexusLibp2p;
  membership: Membership;
  telemetry: TelemetryBus;
  /** The telemetry interval: a peer's state is the age of its last sighting in intervals. */
  intervalMs: number;
}

/** Last sightings and RTTs of the members, and the views built from them. */
export class PeerDirectory {
  readonly #c: PeerDirectoryComponents;
  readonly #lastSeen = new Map<string, number>();
  readonly #rtt = new Map<string, number>();
  readonly #punched = new WeakSet<Connection>();

  constructor(components: PeerDirectoryComponents) {
    this.#c = components;
  }

  /** Notes that we just heard from a member (a connection opened, or its record arrived). */
  seen(peerId: string): void {
    this.#lastSeen.set(peerId, Date.now());
  }

  /** Remembers when we last heard from each peer, for `peers` right after a restart. */
  saveLastSeen(): void {
    for (const [peerId, at] of this.#lastSeen) this.#c.membership.touch(peerId, { lastSeen: at });
  }

  /**
   * Pings a member once. libp2p's connection monitor first measures a connection's RTT one ping
   * interval (30 s) after it opens; one ping now lets `peers` show it at once.
   */
  measureRtt(peer: PeerId): void {
    void this.#c.node.services.ping
      .ping(peer, { signal: AbortSignal.timeout(5000) })
      .then((ms) => this.#rtt.set(peer.toString(), ms))
      .catch(() => {});
  }

  /** Notes a direct connection that a hole punch made. */
  punched(conn: Connection): void {
    this.#punched.add(conn);
  }

  /**
   * Whether any connection to the peer is open. Asked for every telemetry record received, so
   * it neither parses the peer id nor formats addresses, as `connectionTo` does.
   */
  isConnected(peerId: string): boolean {
    return this.#c.node.getConnections().some((c) => c.remotePeer.toString() === peerId);
  }

  /** How we are connected to a peer right now (the best path when there are several). */
  connectionTo(peerId: string): ConnectionPath {
    const conns = this.#c.node.getConnections(peerIdFromString(peerId));
    if (conns.length === 0) return 'none';
    const direct = conns.filter((c) => !c.remoteAddr.toString().includes('/p2p-circuit'));
    if (direct.length === 0) return 'relayed';
    return direct.some((c) => !this.#punched.has(c)) ? 'direct' : 'punched';
  }

  /** The last RTT to a peer: from libp2p's connection monitor, else from `plexus ping`. */
  #rttOf(peerId: string): number | null {
    const conns = this.#c.node.getConnections(peerIdFromString(peerId));
    const rtt = conns.find((c) => c.rtt !== undefined)?.rtt;
    if (rtt !== undefined) return Math.round(rtt * 100) / 100;
    return conns.length > 0 ? (this.#rtt.get(peerId) ?? null) : null;
  }

  /** Every other live member with its state. */
  peers(): PeerView[] {
    const self = this.#c.node.peerId.toString();
    const now = Date.now();
    return this.#c.membership
      .list()
      .filter((m) => m.peerId !== self)
      .map((m) => {
        const connection = this.connectionTo(m.peerId);
        const lastSeen = this.#lastSeen.get(m.peerId) ?? null;
        const telemetry = this.#c.telemetry.latest(m.peerId);
        return {
          name: m.name,
          peerId: m.peerId,
          state: stateOf(lastSeen, this.#c.intervalMs, now),
          // Listen addresses (what others can dial), freshest first: the peer's own record,
          // else what identify told us. A connection's remote address may be an ephemeral port.
          addrs: telemetry?.addrs?.length ? telemetry.addrs : m.addrs,
          connection,
          rttMs: this.#rttOf(m.peerId),
          lastSeen: lastSeen ?? m.lastSeen,
          tags: m.tags,
          telemetry,
        };
      });
  }

  /** Pings a node `count` times, reporting each RTT. */
  async ping(
    nameOrPeer: string,
    count: number,
    onReply: (ms: number, seq: number) => Promise<void>,
    signal: AbortSignal,
  ): Promise<PingResult> {
    const m = this.#c.membership.resolve(nameOrPeer);
    if (m.peerId === this.#c.node.peerId.toString())
      throw new PeerUnreachableError(m.name, 'that is this node');
    const results: number[] = [];
    let lost = 0;
    for (let i = 0; i < count && !signal.aborted; i++) {
      try {
        const ms = await this.#c.node.services.ping.ping(peerIdFromString(m.peerId), {
          signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
        });
        results.push(ms);
        this.#rtt.set(m.peerId, ms);
        await onReply(ms, i + 1);
      } catch (err) {
        lost++;
        if (results.length === 0 && i === count - 1)
          throw new PeerUnreachableError(m.name, (err as Error).message);
      }
      if (i < count - 1) await new Promise((r) => setTimeout(r, 200));
    }
    return {
      name: m.name,
      peerId: m.peerId,
      sent: count,
      received: results.length,
      lost,
      rttMs: results,
      connection: this.connectionTo(m.peerId),
    };
  }
}
