/**
 * `/plexus/admit/1.0.0`: the only protocol a peer that is not yet a member may speak.
 * The joiner sends `{token, member}` (its self-signed record); the admitting node checks the
 * token (signature, network, expiry, revocation, remaining uses), that the record is signed by
 * the connecting peer itself, and that the name is free; then countersigns, stores and gossips
 * the admission and answers with it plus a membership snapshot.
 */
import type { Connection, Stream } from '@libp2p/interface';
import { toErrorBody } from '../core/errors.ts';
import type { Signer } from '../crypto/ed25519.ts';
import type { Logger } from '../logging/index.ts';
import { MAX_ADMIT_FRAME_BYTES, PROTOCOL_TIMEOUT_MS } from './constants.ts';
import { AdmissionError } from './errors.ts';
import { jsonChannel } from './json-stream.ts';
import type { Membership, MembershipSnapshot } from './membership.ts';
import { type Admission, countersign, openMember } from './records.ts';
import { decodeToken } from './token.ts';

/** What the admitting side needs. */
export interface AdmitterComponents {
  membership: Membership;
  /** This node's signer (countersigns) and peer ID. */
  self: { peerId: string; signer: Signer };
  networkId: string;
  adminPublicKey: Buffer;
  logger: Logger;
  /** Spreads a fresh admission to the mesh. */
  publishAdmission(adm: Admission): void;
  /** This node's dialable addresses, handed to the joiner with the others' as hints. */
  selfAddrs(): string[];
}

/** Admission reply. */
export type AdmitReply =
  | { ok: true; admission: Admission; snapshot: MembershipSnapshot; addrs?: Record<string, string[]> }
  | { ok: false; error: { code: string; message: string } };

/** Checks a request and returns the countersigned admission. Throws AdmissionError. */
export function admit(
  components: AdmitterComponents,
  remotePeer: string,
  request: unknown,
  now = Date.now(),
): Admission {
  const { membership, self } = components;
  const req = request as { token?: unknown; member?: unknown };
  if (typeof req !== 'object' || req === null || typeof req.token !== 'string') {
    throw new AdmissionError('BAD_REQUEST', 'admission request must carry a token and a member record');
  }
  const token = decodeToken(req.token, now);
  if (
    token.net !== components.networkId ||
    !Buffer.from(token.adm, 'base64url').equals(components.adminPublicKey)
  ) {
    throw new AdmissionError('WRONG_NETWORK', 'token belongs to another network', 'unauthenticated');
  }
  if (membership.isTokenRevoked(token.id)) {
    throw new AdmissionError(
      'TOKEN_REVOKED',
      `token ${token.id} was revoked; ask for a new one`,
      'unauthenticated',
    );
  }
  const member = openMember(req.member);
  if (member.peerId !== remotePeer) {
    throw new AdmissionError(
      'PEER_MISMATCH',
      'member record is not signed by the connecting peer',
      'unauthenticated',
    );
  }
  if (member.tokenId !== token.id)
    throw new AdmissionError('BAD_REQUEST', 'member record names another token');
  if (Math.abs(member.at - now) > 5 * 60_000) {
    throw new AdmissionError(
      'CLOCK_SKEW',
      "member record time is more than 5 min off this node's clock; fix the clock (NTP)",
    );
  }
  if (membership.isRevoked(member.peerId)) {
    throw new AdmissionError('REVOKED', 'this node was revoked; join with a fresh data dir', 'denied');
  }
  const existing = membership.get(member.peerId);
  if (existing && !existing.revokedAt) {
    // Re-running admission for an already admitted peer (a retried join) is idempotent.
    const snap = membership.snapshot();
    const adm = snap.members.find((a) => openMember(a.member).peerId === member.peerId);
    if (adm) return adm;
  }
  const holder = membership.byName(member.name);
  if (holder && holder.peerId !== member.peerId) {
    throw new AdmissionError(
      'NAME_TAKEN',
      `node name '${member.name}' is taken by ${holder.peerId.slice(-8)}; pick another --name, or 'plexus revoke ${member.name}' first`,
      'conflict',
    );
  }
  if (membership.tokenUses(token.id) >= token.uses) {
    throw new AdmissionError(
      'TOKEN_USED_UP',
      `token ${token.id} has no uses left (${token.uses} used); ask for a new one`,
      'denied',
    );
  }
  const adm = countersign(req.member as Admission['member'], self.peerId, self.signer);
  const result = membership.accept(adm);
  if (result !== 'added')
    throw new AdmissionError('REJECTED', 'admission could not be recorded; try again', 'conflict');
  components.publishAdmission(adm);
  return adm;
}

/** The stream handler for ADMIT_PROTOCOL. */
export function admitHandler(components: AdmitterComponents) {
  return async (stream: Stream, connection: Connection): Promise<void> => {
    const remote = connection.remotePeer.toString();
    const ch = jsonChannel(stream, MAX_ADMIT_FRAME_BYTES);
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    let reply: AdmitReply;
    try {
      const request = await ch.read(signal);
      const admission = admit(components, remote, request);
      reply = {
        ok: true,
        admission,
        snapshot: components.membership.snapshot(),
        addrs: addressHints(components),
      };
      components.logger.info(
        { peer: remote, name: openMember(admission.member).name },
        'admitted a new node',
      );
    } catch (err) {
      const body = toErrorBody(err);
      components.logger.warn({ peer: remote, code: body.code, reason: body.message }, 'refused admission');
      reply = { ok: false, error: { code: body.code, message: body.message } };
    }
    try {
      await ch.write(reply, signal);
      await stream.close({ signal });
    } catch (err) {
      stream.abort(err as Error);
    }
  };
}

/**
 * Where each member listens, so the joiner's agent can dial every member at once instead of
 * discovering them one by one. Unsigned hints: a wrong address only costs a failed dial.
 */
function addressHints(components: AdmitterComponents): Record<string, string[]> {
  const hints: Record<string, string[]> = { [components.self.peerId]: components.selfAddrs().slice(0, 16) };
  for (const m of components.membership.list()) {
    if (m.addrs.length && m.peerId !== components.self.peerId) hints[m.peerId] = m.addrs.slice(0, 16);
  }
  return hints;
}

/** Joining side: runs admission on an open stream. Throws AdmissionError with the admitter's reason. */
export async function requestAdmission(
  stream: Stream,
  token: string,
  member: Admission['member'],
): Promise<{ admission: Admission; snapshot: MembershipSnapshot; addrs: Record<string, string[]> }> {
  const ch = jsonChannel(stream, 16 * 1024 * 1024);
  const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
  await ch.write({ token, member }, signal);
  const reply = (await ch.read(signal)) as AdmitReply;
  await stream.close().catch(() => {});
  if (typeof reply !== 'object' || reply === null)
    throw new AdmissionError('BAD_REPLY', 'admitting node sent a malformed reply');
  if (!reply.ok) {
    const e = reply.error ?? { code: 'REFUSED', message: 'refused' };
    throw new AdmissionError(
      String(e.code).slice(0, 64),
      `admission refused: ${String(e.message).slice(0, 300)}`,
      'denied',
    );
  }
  const addrs: Record<string, string[]> = {};
  if (typeof reply.addrs === 'object' && reply.addrs !== null) {
    for (const [peer, list] of Object.entries(reply.addrs).slice(0, 10_000)) {
      if (Array.isArray(list))
        addrs[peer] = list.filter((a) => typeof a === 'string' && a.length <= 512).slice(0, 16);
    }
  }
  return { admission: reply.admission, snapshot: reply.snapshot, addrs };
}
