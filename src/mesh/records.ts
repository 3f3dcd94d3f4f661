/**
 * Signed membership records. A joining node signs `{peerId, name, tags, tokenId, at}` with its
 * node key; the admitting node countersigns the pair, and that admission travels by gossip and
 * anti-entropy sync. Revocations are signed by the admin key. Every check here is pure.
 */
import { z } from 'zod';
import { b64u, fromB64u, type Signer, verifyEd25519 } from '../crypto/ed25519.ts';
import { BadSignatureError } from '../crypto/errors.ts';
import { isSignedBlob, openBlob, type SignedBlob, signBlob, signingBytes } from '../crypto/signed.ts';
import { MAX_RECORD_BYTES } from './constants.ts';
import { MalformedRecordError } from './errors.ts';
import { publicKeyOfPeerId } from './peer-ids.ts';

const MEMBER_DOMAIN = 'plexus-member/1';
const ADMIT_DOMAIN = 'plexus-admit/1';
const REVOKE_DOMAIN = 'plexus-revoke/1';

/** A node name is a DNS label. */
export const nodeNameSchema = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'a node name is a DNS label: a-z, 0-9 and -, up to 63 characters',
  );

/** What a node says about itself when joining. */
export const memberPayloadSchema = z.strictObject({
  peerId: z.string().min(1).max(128),
  name: nodeNameSchema,
  tags: z.array(z.string().min(1).max(64)).max(32),
  /** The token used to join; `init` for the first node. */
  tokenId: z.string().min(1).max(32),
  /** Signing time, ms. */
  at: z.number().int().positive(),
});
/** A member's self-description. */
export type MemberPayload = z.infer<typeof memberPayloadSchema>;

/** The admitting node's countersignature over a member record. */
export interface Admission {
  member: SignedBlob;
  /** Peer ID of the admitting node, or `admin` for the first node (signed by the admin key). */
  by: string;
  /** base64url signature over `"plexus-admit/1\n" + member.p + "." + member.s`. */
  bs: string;
}

/** An admin-signed revocation of a node, a token or an operator key. */
export const revocationPayloadSchema = z.strictObject({
  kind: z.enum(['node', 'token', 'operator']),
  /** Peer ID for a node, token id for a token, key id for an operator key. */
  subject: z.string().min(1).max(128),
  at: z.number().int().positive(),
  reason: z.string().max(256).optional(),
});
/** A revocation's payload. */
export type RevocationPayload = z.infer<typeof revocationPayloadSchema>;

/** Signs a member record with the node's own key. */
export function signMember(payload: MemberPayload, node: Signer): SignedBlob {
  return signBlob(MEMBER_DOMAIN, payload, node);
}

/** Countersigns a member record; `by` is the admitting peer ID or `admin`. */
export function countersign(member: SignedBlob, by: string, signer: Signer): Admission {
  return { member, by, bs: b64u(signer.sign(signingBytes(ADMIT_DOMAIN, `${member.p}.${member.s}`))) };
}

/** Checks shape and the member's own signature; returns the payload. */
export function openMember(member: unknown): MemberPayload {
  if (!isSignedBlob(member, MAX_RECORD_BYTES)) throw new MalformedRecordError('member record is malformed');
  const unverified = memberPayloadSchema.safeParse(decodeUnverified(member.p));
  if (!unverified.success)
    throw new MalformedRecordError(`member record is invalid: ${unverified.error.issues[0].message}`);
  const pub = publicKeyOfPeerId(unverified.data.peerId);
  if (!pub) throw new MalformedRecordError('member record has an unsupported peer id');
  openBlob(MEMBER_DOMAIN, member, pub, 'member record');
  return unverified.data;
}

/** Checks an admission's structure; returns it typed. */
export function asAdmission(value: unknown): Admission {
  const a = value as Admission;
  if (
    typeof a !== 'object' ||
    a === null ||
    typeof a.by !== 'string' ||
    a.by.length > 128 ||
    typeof a.bs !== 'string' ||
    a.bs.length > 128 ||
    !isSignedBlob(a.member, MAX_RECORD_BYTES)
  ) {
    throw new MalformedRecordError('admission record is malformed');
  }
  return { member: { p: a.member.p, s: a.member.s }, by: a.by, bs: a.bs };
}

/** Verifies the countersignature with the admitter's public key. */
export function verifyCountersign(adm: Admission, admitterKey: Uint8Array): void {
  let sig: Buffer;
  try {
    sig = fromB64u(adm.bs);
  } catch {
    throw new BadSignatureError('admission');
  }
  if (!verifyEd25519(admitterKey, signingBytes(ADMIT_DOMAIN, `${adm.member.p}.${adm.member.s}`), sig)) {
    throw new BadSignatureError('admission');
  }
}

/** Signs a revocation with the admin key. */
export function signRevocation(payload: RevocationPayload, admin: Signer): SignedBlob {
  return signBlob(REVOKE_DOMAIN, payload, admin);
}

/** Verifies a revocation against the admin key; returns the payload. */
export function openRevocation(blob: unknown, adminPublicKey: Uint8Array): RevocationPayload {
  if (!isSignedBlob(blob, MAX_RECORD_BYTES)) throw new MalformedRecordError('revocation is malformed');
  const payload = openBlob(REVOKE_DOMAIN, blob, adminPublicKey, 'revocation');
  const parsed = revocationPayloadSchema.safeParse(payload);
  if (!parsed.success) throw new MalformedRecordError('revocation payload is invalid');
  return parsed.data;
}

function decodeUnverified(p: string): unknown {
  try {
    return JSON.parse(fromB64u(p).toString('utf8'));
  } catch {
    return undefined;
  }
}
