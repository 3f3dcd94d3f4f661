/**
 * `/plexus/admit/2.0.0`, spoken only at the join door (door.ts), never on the mesh port.
 *
 * - `{type: 'join', admission}`: a joiner's self-certifying admission (records.ts). The door
 *   checks it as every member does, plus what only a fresh join can be held to (the token is
 *   neither expired nor revoked now, the record was signed just now), stores and gossips it,
 *   waits a moment for a racing claim from another door, and only if it still stands answers with
 *   the swarm key, a membership snapshot and the members' addresses.
 * - `{type: 'rekey'}`: a member that missed a swarm-key rotation (it was offline) asks for the
 *   current key. Noise authenticated its peer ID; it must be a live member.
 *
 * The channel is Noise, authenticated to the door's peer ID that the token names, so the swarm
 * key never travels in the clear and never to anyone but an admitted member.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection, Stream } from '@libp2p/interface';
import { toErrorBody } from '../core/errors.ts';
import type { Logger } from '../logging/index.ts';
import { CLOCK_ALLOWANCE_MS, JOIN_HOLD_MS, MAX_ADMIT_FRAME_BYTES, PROTOCOL_TIMEOUT_MS } from './constants.ts';
import { AdmissionError } from './errors.ts';
import { jsonChannel, replyAndClose } from './json-stream.ts';
import type { Membership, MembershipSnapshot } from './membership.ts';
import { type Admission, asAdmission, verifyAdmission } from './records.ts';

/** The swarm key as a door hands it out: the key, its epoch, and the admin's rotation record. */
export interface SwarmKeyGrant {
  /** 64 hex characters. */
  psk: string;
  epoch: number;
  /** The admin-signed rotation record of this epoch (absent for epoch 0). */
  rotation?: unknown;
}

/** What the door's handler needs. */
export interface AdmitterComponents {
  membership: Membership;
  adminPublicKey: Uint8Array;
  logger: Logger;
  /** Spreads a fresh admission to the mesh. */
  publishAdmission(adm: Admission): void;
  /** The swarm key in use, for `peer` (refused to a node a rotation names as revoked). */
  swarmKey(peer: string): SwarmKeyGrant;
  /** Member addresses, handed to the joiner so that its agent can dial every member at once. */
  addressHints(): Record<string, string[]>;
  /** Admission attempts from one source are rate-limited; false when this one is over budget. */
  allow(remoteAddr: string): boolean;
}

/** A door's answer. */
export type AdmitReply =
  | {
      ok: true;
      swarmKey: SwarmKeyGrant;
      admission?: Admission;
      snapshot?: MembershipSnapshot;
      addrs?: Record<string, string[]>;
    }
  | { ok: false; error: { code: string; message: string } };

/** Checks a fresh join and merges it. Throws AdmissionError (or the record's own error). */
export function admitJoin(
  components: Pick<AdmitterComponents, 'membership' | 'adminPublicKey'>,
  remotePeer: string,
  admission: unknown,
  now = Date.now(),
): Admission {
  const { membership } = components;
  const { member, token } = verifyAdmission(admission, components.adminPublicKey);
  if (member.peerId !== remotePeer) {
    throw new AdmissionError(
      'PEER_MISMATCH',
      'member record is not the connecting peer’s',
      'unauthenticated',
    );
  }
  if (token.exp * 1000 <= now) {
    throw new AdmissionError(
      'TOKEN_EXPIRED',
      `token expired at ${new Date(token.exp * 1000).toISOString()}; ask for a new one`,
      'unauthenticated',
    );
  }
  if (membership.isTokenRevoked(token.id))
    throw new AdmissionError(
      'TOKEN_REVOKED',
      `token ${token.id} was revoked; ask for a new one`,
      'unauthenticated',
    );
  if (Math.abs(member.at - now) > CLOCK_ALLOWANCE_MS) {
    throw new AdmissionError(
      'CLOCK_SKEW',
      "member record time is more than 5 min off this node's clock; fix the clock (NTP)",
    );
  }
  const verdict = membership.judge(admission, now);
  if (verdict.result === 'rejected') throw verdict.error;
  if (!membership.isMember(member.peerId)) {
    throw new AdmissionError('REVOKED', 'this node was revoked; join with a fresh data dir', 'denied');
  }
  return asAdmission(admission);
}

/** The stream handler of ADMIT_PROTOCOL at the door. */
export function admitHandler(components: AdmitterComponents) {
  return async (stream: Stream, connection: Connection): Promise<void> => {
    const remote = connection.remotePeer.toString();
    const ch = jsonChannel(stream, MAX_ADMIT_FRAME_BYTES);
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    let reply: AdmitReply;
    try {
      if (!components.allow(connection.remoteAddr.toString())) {
        throw new AdmissionError(
          'RATE_LIMITED',
          'too many admission attempts from your address; wait a minute',
          'unavailable',
        );
      }
      const request = (await ch.read(signal)) as { type?: unknown; admission?: unknown } | null;
      reply = await answer(components, remote, request);
    } catch (err) {
      const body = toErrorBody(err);
      components.logger.warn(
        { peer: remote, code: body.code, reason: body.message },
        'refused at the join door',
      );
      reply = { ok: false, error: { code: body.code, message: body.message } };
    }
    await replyAndClose(ch, reply, signal);
  };
}

async function answer(
  components: AdmitterComponents,
  remote: string,
  request: { type?: unknown; admission?: unknown } | null,
): Promise<AdmitReply> {
  const { membership } = components;
  if (request?.type === 'rekey') {
    if (!membership.isMember(remote))
      throw new AdmissionError('NOT_A_MEMBER', 'only members get the swarm key', 'denied');
    return { ok: true, swarmKey: components.swarmKey(remote) };
  }
  if (request?.type !== 'join')
    throw new AdmissionError('BAD_REQUEST', "a door request is {type: 'join', admission} or {type: 'rekey'}");
  const admission = admitJoin(components, remote, request.admission);
  components.publishAdmission(admission);
  // Another door may have admitted a racing claim to the same name or token use a moment ago:
  // give its gossip time to arrive, so that a join that lost is told so now, not never.
  await sleep(JOIN_HOLD_MS);
  if (!membership.isMember(remote)) {
    const lost = membership.conflicts(50).find((c) => c.peerId === remote);
    throw new AdmissionError(
      lost?.code ?? 'REFUSED',
      lost?.message ?? 'the admission did not stand',
      'conflict',
    );
  }
  components.logger.info({ peer: remote }, 'admitted a new node');
  return {
    ok: true,
    swarmKey: components.swarmKey(remote),
    admission,
    snapshot: membership.snapshot(),
    addrs: components.addressHints(),
  };
}

/** What a joiner gets from a door. */
export interface DoorGrant {
  swarmKey: SwarmKeyGrant;
  snapshot: MembershipSnapshot;
  addrs: Record<string, string[]>;
}

/** Joining (or rekeying) side: one request on an open stream. Throws AdmissionError with the door's reason. */
export async function askDoor(
  stream: Stream,
  request: { type: 'join'; admission: Admission } | { type: 'rekey' },
): Promise<DoorGrant> {
  const ch = jsonChannel(stream, 64 * 1024 * 1024);
  const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS + JOIN_HOLD_MS);
  await ch.write(request, signal);
  const reply = (await ch.read(signal)) as AdmitReply;
  await stream.close().catch(() => {});
  if (typeof reply !== 'object' || reply === null)
    throw new AdmissionError('BAD_REPLY', 'the join door sent a malformed reply');
  if (!reply.ok) {
    const e = reply.error ?? { code: 'REFUSED', message: 'refused' };
    throw new AdmissionError(
      String(e.code).slice(0, 64),
      `refused: ${String(e.message).slice(0, 300)}`,
      'denied',
    );
  }
  const key = reply.swarmKey;
  if (typeof key?.psk !== 'string' || !/^[0-9a-f]{64}$/.test(key.psk) || !Number.isSafeInteger(key.epoch))
    throw new AdmissionError('BAD_REPLY', 'the join door sent no valid swarm key');
  const addrs: Record<string, string[]> = {};
  if (typeof reply.addrs === 'object' && reply.addrs !== null) {
    for (const [peer, list] of Object.entries(reply.addrs).slice(0, 10_000)) {
      if (Array.isArray(list))
        addrs[peer] = list.filter((a) => typeof a === 'string' && a.length <= 512).slice(0, 16);
    }
  }
  return {
    swarmKey: { psk: key.psk, epoch: key.epoch, rotation: key.rotation },
    snapshot: reply.snapshot ?? { members: [], revocations: [] },
    addrs,
  };
}
