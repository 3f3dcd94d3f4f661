/**
 * Signed membership records, and the self-certifying admission (docs/architecture.md, Trust
 * model). A joining node signs `{peerId, name, tags, tokenId, at}` with its node key (it holds
 * that peer ID), and signs that record again with its join token's one-time key (it holds the
 * token). The admission is the token's admin-signed certificate, the record and that second
 * signature: any node checks it back to the admin key with nothing else, and no member's word
 * enters into it. Revocations are signed by the admin key. Every check here is pure, and light
 * (node:crypto and zod, no libp2p), so the CLI verifies the nodes it talks to with it.
 */
import * as z from '../core/zod.ts';
import { b64u, fromB64u, type Signer, verifyEd25519 } from '../crypto/ed25519.ts';
import { BadSignatureError } from '../crypto/errors.ts';
import { ed25519KeyOfPeerId } from '../crypto/peer-key.ts';
import { isSignedBlob, openBlob, type SignedBlob, signBlob, signingBytes } from '../crypto/signed.ts';
import { CLOCK_ALLOWANCE_MS, MAX_RECORD_BYTES, MAX_TOKEN_CERT_BYTES } from './constants.ts';
import { MalformedRecordError } from './errors.ts';
import { openTokenCert, type TokenPayload } from './token.ts';

const MEMBER_DOMAIN = 'plexus-member/2';
const ADMIT_DOMAIN = 'plexus-admit/2';
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
  /** The token used to join (the first node's is one the admin made for it at init). */
  tokenId: z.string().min(1).max(32),
  /** Signing time, ms. */
  at: z.number().int().positive(),
});
/** A member's self-description. */
export type MemberPayload = z.infer<typeof memberPayloadSchema>;

/** A self-certifying admission: what every member checks and stores. */
export interface Admission {
  /** The join token's certificate: its payload signed by the admin key (no secret). */
  token: SignedBlob;
  /** The member record, signed by the node key of the peer it names. */
  member: SignedBlob;
  /** The token key's signature over `"plexus-admit/2\n" + member.p + "." + member.s`. */
  ts: string;
}

/** What a verified admission says. */
export interface VerifiedAdmission {
  member: MemberPayload;
  token: TokenPayload;
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

/** Makes an admission: the member record signed by the node, then by the token key. */
export function signAdmission(
  payload: MemberPayload,
  node: Signer,
  token: { cert: SignedBlob; key: Signer },
): Admission {
  const member = signMember(payload, node);
  return { token: token.cert, member, ts: b64u(token.key.sign(admitBytes(member))) };
}

/** Checks shape and the member's own signature; returns the payload. */
export function openMember(member: unknown): MemberPayload {
  if (!isSignedBlob(member, MAX_RECORD_BYTES)) throw new MalformedRecordError('member record is malformed');
  const unverified = memberPayloadSchema.safeParse(decodeUnverified(member.p));
  if (!unverified.success)
    throw new MalformedRecordError(`member record is invalid: ${unverified.error.issues[0].message}`);
  const pub = ed25519KeyOfPeerId(unverified.data.peerId);
  if (!pub) throw new MalformedRecordError('member record has an unsupported peer id');
  openBlob(MEMBER_DOMAIN, member, pub, 'member record');
  return unverified.data;
}

/** Checks an admission's structure; returns a copy holding only its known fields. */
export function asAdmission(value: unknown): Admission {
  const a = value as Admission;
  if (
    typeof a !== 'object' ||
    a === null ||
    typeof a.ts !== 'string' ||
    a.ts.length > 128 ||
    !isSignedBlob(a.token, MAX_TOKEN_CERT_BYTES) ||
    !isSignedBlob(a.member, MAX_RECORD_BYTES)
  ) {
    throw new MalformedRecordError('admission record is malformed');
  }
  return { token: { p: a.token.p, s: a.token.s }, member: { p: a.member.p, s: a.member.s }, ts: a.ts };
}

/**
 * Verifies an admission back to the admin key, with nothing but the admission: the token
 * certificate is the admin's, the record is the peer's own, the token key signed the record, and
 * the record's token, tags and time agree with the token. Whether the token was still good when
 * the admission appeared, and whether its uses and the name are free, are the membership's
 * questions (membership.ts). Throws MalformedRecordError, TokenError or BadSignatureError.
 */
export function verifyAdmission(value: unknown, adminPublicKey: Uint8Array): VerifiedAdmission {
  const adm = asAdmission(value);
  const token = openTokenCert(adm.token, adminPublicKey);
  const member = openMember(adm.member);
  let sig: Buffer;
  try {
    sig = fromB64u(adm.ts);
  } catch {
    throw new BadSignatureError('admission');
  }
  if (!verifyEd25519(fromB64u(token.tk), admitBytes(adm.member), sig))
    throw new BadSignatureError('admission');
  if (member.tokenId !== token.id) throw new MalformedRecordError('member record names another token');
  const missing = token.tags.find((t) => !member.tags.includes(t));
  if (missing !== undefined)
    throw new MalformedRecordError(`member record drops the token's tag '${missing}'`);
  if (member.at < token.iat * 1000 - CLOCK_ALLOWANCE_MS || member.at > token.exp * 1000 + CLOCK_ALLOWANCE_MS)
    throw new MalformedRecordError("member record is dated outside its token's lifetime");
  return { member, token };
}

function admitBytes(member: SignedBlob): Buffer {
  return signingBytes(ADMIT_DOMAIN, `${member.p}.${member.s}`);
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
