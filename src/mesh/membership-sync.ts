/**
 * Membership over the wire: admissions, revocations and operator grants gossiped on
 * `plexus/members/1`, and the anti-entropy sync on `/plexus/members/1.0.0`, where two peers swap
 * whole snapshots in one round trip (on every new member connection, and every SYNC_INTERVAL_MS
 * with one random member) to heal anything gossip missed. Every record is verified by
 * Membership before it counts.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import type { Logger } from '../logging/index.ts';
import {
  MAX_ADMISSION_BYTES,
  MAX_SNAPSHOT_BYTES,
  MEMBERS_PROTOCOL,
  MEMBERS_TOPIC,
  PROTOCOL_TIMEOUT_MS,
} from './constants.ts';
import { jsonChannel } from './json-stream.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';
import type { Admission } from './records.ts';
import type { TelemetryBus } from './telemetry.ts';

/** A message on the membership topic. */
export type MembersMessage =
  | { type: 'admission'; admission: Admission }
  | { type: 'revocation'; blob: unknown }
  | { type: 'grant'; blob: unknown };

/** What membership sync uses. */
export interface MembershipSyncComponents {
  node: PlexusLibp2p;
  membership: Membership;
  /** Our latest telemetry record rides along in our snapshot (see `#syncMessage`). */
  telemetry: TelemetryBus;
  logger: Logger;
  /** Checks and keeps a telemetry record that came with a peer's snapshot, as if gossiped. */
  acceptTelemetry(from: string, data: Uint8Array): void;
}

/** Gossip and anti-entropy of the membership records. */
export class MembershipSync {
  readonly #c: MembershipSyncComponents;

  constructor(components: MembershipSyncComponents) {
    this.#c = components;
  }

  /** Spreads a record that was already merged locally; peers that miss it get it by sync. */
  publish(msg: MembersMessage): void {
    const data = Buffer.from(JSON.stringify(msg));
    this.#c.node.services.pubsub.publish(MEMBERS_TOPIC, data).catch((err) => {
      this.#c.logger.debug({ err }, 'membership publish failed (peers will sync)');
    });
  }

  /** The topic validator of `plexus/members/1`: merges the record, and forwards it only if new. */
  validate(data: Uint8Array): TopicValidatorResult {
    const { membership } = this.#c;
    if (data.byteLength > MAX_ADMISSION_BYTES + 1024) return TopicValidatorResult.Reject;
    let msg: { type?: string; admission?: unknown; blob?: unknown };
    try {
      msg = JSON.parse(Buffer.from(data).toString('utf8'));
    } catch {
      return TopicValidatorResult.Reject;
    }
    if (msg?.type === 'admission') {
      // Only a new record is passed on. A refused one is dropped, not punished: an honest member
      // forwards a claim that lost a race as readily as the one that won it.
      return membership.accept(msg.admission) === 'added'
        ? TopicValidatorResult.Accept
        : TopicValidatorResult.Ignore;
    }
    if (msg?.type === 'revocation') {
      return membership.revoke(msg.blob) ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore;
    }
    if (msg?.type === 'grant') {
      return membership.operators.accept(msg.blob)
        ? TopicValidatorResult.Accept
        : TopicValidatorResult.Ignore;
    }
    return TopicValidatorResult.Reject;
  }

  /** Answers a peer's sync request on MEMBERS_PROTOCOL. */
  async serve(stream: Stream, conn: Connection): Promise<void> {
    const { membership } = this.#c;
    const id = conn.remotePeer.toString();
    const ch = jsonChannel(stream, MAX_SNAPSHOT_BYTES);
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    try {
      // The caller sends its own snapshot first: sync is symmetric in one round trip. The
      // gater let only members connect, but one may have been revoked since.
      const theirs = await ch.read(signal);
      if (!membership.isMember(id)) {
        stream.abort(new Error('not a member'));
        return;
      }
      await ch.write(this.#syncMessage(), signal);
      await stream.close({ signal });
      membership.merge(theirs);
      this.#syncedTelemetry(id, theirs);
    } catch (err) {
      this.#c.logger.debug({ err, peer: id }, 'sync request failed');
      stream.abort(err as Error);
    }
  }

  /** Swaps snapshots with one peer. */
  async syncWith(peer: PeerId): Promise<void> {
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    const stream = await this.#c.node.dialProtocol(peer, MEMBERS_PROTOCOL, {
      signal,
      runOnLimitedConnection: true,
    });
    const ch = jsonChannel(stream, MAX_SNAPSHOT_BYTES);
    try {
      await ch.write(this.#syncMessage(), signal);
      const theirs = await ch.read(signal);
      const added = this.#c.membership.merge(theirs);
      this.#syncedTelemetry(peer.toString(), theirs);
      if (added) this.#c.logger.debug({ peer: peer.toString(), added }, 'sync learnt records');
      await stream.close({ signal });
    } catch (err) {
      stream.abort(err as Error);
      throw err;
    }
  }

  /** Swaps snapshots with one connected member picked at random (the periodic anti-entropy). */
  async syncRandom(): Promise<void> {
    const peers = this.#c.node.getPeers().filter((p) => this.#c.membership.isMember(p.toString()));
    if (peers.length === 0) return;
    await this.syncWith(peers[Math.floor(Math.random() * peers.length)]).catch(() => {});
  }

  /** Our membership snapshot, with our latest telemetry record for a peer that has none yet. */
  #syncMessage(): object {
    const self = this.#c.telemetry.self();
    return { ...this.#c.membership.snapshot(), ...(self ? { telemetry: self } : {}) };
  }

  /** A telemetry record that came with a peer's sync message: checked like a gossiped one. */
  #syncedTelemetry(from: string, message: unknown): void {
    const record = (message as { telemetry?: unknown } | null)?.telemetry;
    if (record === undefined) return;
    this.#c.acceptTelemetry(from, Buffer.from(JSON.stringify(record)));
  }
}
