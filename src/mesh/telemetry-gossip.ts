/**
 * The telemetry bus on the wire: publishes this node's record on `plexus/telemetry/1` (every
 * interval, and soon after a member subscribes while this node is new), and checks every record
 * received, by gossip or with a sync snapshot, before the TelemetryBus keeps it. A member's
 * record is also its heartbeat (it makes the member 'online') and tells us where it listens.
 */
import { type SubscriptionChangeData, TopicValidatorResult } from '@libp2p/gossipsub';
import type { PeerId } from '@libp2p/interface';
import type { Connector } from './connector.ts';
import { NEWCOMER_MS, TELEMETRY_TOPIC } from './constants.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';
import type { PeerDirectory } from './peer-directory.ts';
import { decodeTelemetry, type TelemetryBus } from './telemetry.ts';

/** What telemetry gossip uses. */
export interface TelemetryGossipComponents {
  node: PlexusLibp2p;
  membership: Membership;
  telemetry: TelemetryBus;
  /** Notes each member heard from, and tells whether we are connected to it. */
  directory: PeerDirectory;
  /** Dials a member whose record tells where it listens, when we are not connected to it. */
  connector: Connector;
  /** This node's name and agent version, for its own record. */
  name: string;
  version: string;
  /** When the mesh was created: a record's uptime, and the newcomer window. */
  startedAt: number;
  /** This node's join door addresses, carried in its record. */
  doorAddrs(): string[];
}

/** Publishes our telemetry record and validates members' records. */
export class TelemetryGossip {
  readonly #c: TelemetryGossipComponents;
  #publishTimer: NodeJS.Timeout | undefined;
  #stopping = false;

  constructor(components: TelemetryGossipComponents) {
    this.#c = components;
  }

  /** Stops publishing. */
  stop(): void {
    this.#stopping = true;
    clearTimeout(this.#publishTimer);
  }

  /** Publishes this node's record now (also called when an app changes state). */
  async publish(): Promise<void> {
    const { node } = this.#c;
    if (this.#stopping) return;
    const addrs = node.getMultiaddrs().map((a) => a.toString());
    const record = await this.#c.telemetry.build({
      node: this.#c.name,
      peerId: node.peerId.toString(),
      version: this.#c.version,
      uptimeS: Math.round((Date.now() - this.#c.startedAt) / 1000),
      addrs: addrs.slice(0, 32),
      door: this.#c.doorAddrs().slice(0, 8),
      reach: addrs.some((a) => !a.includes('/p2p-circuit')) ? 'direct' : 'relayed',
    });
    await node.services.pubsub.publish(TELEMETRY_TOPIC, Buffer.from(JSON.stringify(record))).catch(() => {});
  }

  /** Join doors of the members that are online and reachable directly, from their records. */
  doorsOfPeers(): string[] {
    const { directory, telemetry } = this.#c;
    return directory
      .peers()
      .filter((p) => p.state === 'online' && p.connection === 'direct')
      .flatMap((p) => telemetry.latest(p.peerId)?.door ?? [])
      .slice(0, 8);
  }

  /**
   * A member (un)subscribed. A node that just started publishes its first record as soon as
   * members subscribe, instead of making them wait up to an interval: that is what makes a
   * joining or restarted node 'online' everywhere fast. Established nodes do not answer every
   * subscription with a flood to the whole mesh (a join in a 20-node mesh cost ~400 gossip
   * messages): the newcomer gets their latest records in the membership sync that runs on every
   * new connection.
   */
  onSubscriptionChange({ peerId, subscriptions }: SubscriptionChangeData): void {
    if (!this.#c.membership.isMember(peerId.toString())) return;
    if (Date.now() - this.#c.startedAt > NEWCOMER_MS) return;
    if (subscriptions.some((s) => s.topic === TELEMETRY_TOPIC && s.subscribe)) this.#publishSoon();
  }

  /** The topic validator of `plexus/telemetry/1`. */
  validate(peer: PeerId, msg: { data: Uint8Array; type?: string; from?: PeerId }): TopicValidatorResult {
    // `from` is the original publisher (signed by gossipsub's StrictSign); `peer` just forwarded.
    return this.accept((msg.from ?? peer).toString(), msg.data);
  }

  /** Checks and keeps a record published by `from` (a member, and the record's own peer). */
  accept(from: string, data: Uint8Array): TopicValidatorResult {
    const { membership, telemetry, directory } = this.#c;
    const name = membership.liveName(from);
    if (name === undefined) {
      telemetry.reject(from, 'not-member');
      return TopicValidatorResult.Reject;
    }
    const record = decodeTelemetry(data);
    if (!record || record.peerId !== from || record.node !== name) {
      telemetry.reject(from, record ? 'forged' : 'malformed');
      return TopicValidatorResult.Reject;
    }
    if (!telemetry.accept(record)) return TopicValidatorResult.Ignore;
    directory.seen(from);
    if (record.addrs?.length && !directory.isConnected(from)) {
      void this.#c.connector.learnAddrs(from, record.addrs);
    }
    return TopicValidatorResult.Accept;
  }

  /** Publishes our record shortly, coalescing bursts (several peers subscribing at once). */
  #publishSoon(): void {
    if (this.#publishTimer) return;
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      void this.publish().catch(() => {});
    }, 100);
    this.#publishTimer.unref();
  }
}
