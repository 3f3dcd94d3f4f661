/**
 * Membership over the wire: admissions, revocations and operator grants gossiped on
 * `plexus/members/1`, and the anti-entropy sync (on every new member connection, and every
 * SYNC_INTERVAL_MS with one random member) that heals anything gossip missed. On
 * `/plexus/members/1.1.0` two peers swap digests of their snapshots first and whole snapshots
 * only when those differ: a settled mesh's sync is two small messages instead of every
 * admission (each with its token certificate, ~1 KiB) both ways. `/plexus/members/1.0.0`, whole
 * snapshots in one round trip, is still spoken with older agents. Every record is verified by
 * Membership before it counts.
 */
import { createHash } from 'node:crypto';
import { TopicValidatorResult } from '@libp2p/gossipsub';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import type { Logger } from '../logging/index.ts';
import {
  MAX_ADMISSION_BYTES,
  MAX_SNAPSHOT_BYTES,
  MEMBERS_DIGEST_PROTOCOL,
  MEMBERS_PROTOCOL,
  MEMBERS_TOPIC,
  PROTOCOL_TIMEOUT_MS,
} from './constants.ts';
import { type JsonChannel, jsonChannel } from './json-stream.ts';
import type { Membership, MembershipSnapshot } from './membership.ts';
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

  /** Answers a peer's sync request on MEMBERS_PROTOCOL (whole snapshots, older agents). */
  async serve(stream: Stream, conn: Connection): Promise<void> {
    await this.#answer(stream, conn, async (ch, theirs, signal) => {
      await ch.write(this.#syncMessage(this.#c.membership.snapshot()), signal);
      return theirs;
    });
  }

  /**
   * Answers a peer's sync request on MEMBERS_DIGEST_PROTOCOL: our digest alone when it is the
   * peer's, else our whole snapshot, and then the peer sends its own.
   */
  async serveDigest(stream: Stream, conn: Connection): Promise<void> {
    await this.#answer(stream, conn, async (ch, theirs, signal) => {
      const ours = this.#c.membership.snapshot();
      const digest = this.#digest(ours);
      if (digestOf(theirs) === digest) {
        await ch.write(this.#syncMessage(undefined, digest), signal);
        return theirs;
      }
      await ch.write(this.#syncMessage(ours, digest), signal);
      return ch.read(signal);
    });
  }

  /** One answered sync request: the caller speaks first; `exchange` answers and returns its snapshot. */
  async #answer(
    stream: Stream,
    conn: Connection,
    exchange: (ch: JsonChannel, theirs: unknown, signal: AbortSignal) => Promise<unknown>,
  ): Promise<void> {
    const { membership } = this.#c;
    const id = conn.remotePeer.toString();
    const ch = jsonChannel(stream, MAX_SNAPSHOT_BYTES);
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    try {
      // The gater let only members connect, but one may have been revoked since.
      const first = await ch.read(signal);
      if (!membership.isMember(id)) {
        stream.abort(new Error('not a member'));
        return;
      }
      const theirs = await exchange(ch, first, signal);
      await stream.close({ signal });
      membership.merge(theirs);
      this.#syncedTelemetry(id, first);
    } catch (err) {
      this.#c.logger.debug({ err, peer: id }, 'sync request failed');
      stream.abort(err as Error);
    }
  }

  /** Swaps snapshots with one peer: digests first when it speaks MEMBERS_DIGEST_PROTOCOL. */
  async syncWith(peer: PeerId): Promise<void> {
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    const stream = await this.#c.node.dialProtocol(peer, [MEMBERS_DIGEST_PROTOCOL, MEMBERS_PROTOCOL], {
      signal,
      runOnLimitedConnection: true,
    });
    const ch = jsonChannel(stream, MAX_SNAPSHOT_BYTES);
    try {
      const ours = this.#c.membership.snapshot();
      const digestFirst = stream.protocol === MEMBERS_DIGEST_PROTOCOL;
      const digest = digestFirst ? this.#digest(ours) : undefined;
      await ch.write(digest ? this.#syncMessage(undefined, digest) : this.#syncMessage(ours), signal);
      const theirs = await ch.read(signal);
      // A peer with another digest answered with its snapshot, and waits for ours (our record
      // went with the digest).
      const differ = digestFirst && digestOf(theirs) !== digest;
      if (differ) await ch.write(ours, signal);
      const added = !digestFirst || differ ? this.#c.membership.merge(theirs) : 0;
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

  #digest(snapshot: MembershipSnapshot): string {
    return snapshotDigest(snapshot, (peerId) => this.#c.membership.isRevoked(peerId));
  }

  /**
   * A sync message: our snapshot and/or its digest, with our latest telemetry record for a
   * peer that has none yet.
   */
  #syncMessage(snapshot?: MembershipSnapshot, digest?: string): object {
    const self = this.#c.telemetry.self();
    return { ...snapshot, ...(digest ? { digest } : {}), ...(self ? { telemetry: self } : {}) };
  }

  /** A telemetry record that came with a peer's sync message: checked like a gossiped one. */
  #syncedTelemetry(from: string, message: unknown): void {
    const record = (message as { telemetry?: unknown } | null)?.telemetry;
    if (record === undefined) return;
    this.#c.acceptTelemetry(from, Buffer.from(JSON.stringify(record)));
  }
}

/**
 * A digest of a snapshot that two nodes holding the same records compute alike, whatever order
 * their tables return them in: SHA-256 over each list's records, sorted. The admissions of
 * revoked peers are left out: one node may hold such an admission and another not (it came
 * after the revocation and was refused), and sending it could change nothing, since the
 * revocation (in the digest) wins over it everywhere.
 */
export function snapshotDigest(s: MembershipSnapshot, isRevoked: (peerId: string) => boolean): string {
  const h = createHash('sha256');
  const members = s.members.filter((a) => !isRevoked(peerOf(a)));
  for (const list of [members, s.revocations, s.grants ?? []]) {
    for (const json of list.map((x) => JSON.stringify(x)).sort()) h.update(json).update('\n');
    h.update('\0');
  }
  return h.digest('base64url');
}

/** The peer id an admission of our own table names (read, not verified: it was when stored). */
function peerOf(adm: Admission): string {
  return (JSON.parse(Buffer.from(adm.member.p, 'base64url').toString('utf8')) as { peerId: string }).peerId;
}

/** The digest a sync message carries, if it carries a well-formed one. */
function digestOf(message: unknown): string | undefined {
  const d = (message as { digest?: unknown } | null)?.digest;
  return typeof d === 'string' && d.length <= 64 ? d : undefined;
}
