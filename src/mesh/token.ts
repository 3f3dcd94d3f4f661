/**
 * Join tokens: `plx2.<base64url(payload)>.<base64url(admin sig)>.<base64url(token secret)>`.
 *
 * The first three parts are the token's certificate: the payload signed by the admin key. It
 * names a one-time token key (`tk`) made for this token; the fourth part is that key's secret.
 * A joiner signs its membership record with the token secret, and the admission it gossips
 * carries the certificate and that signature but never the secret, so every member can check the
 * admission back to the admin key on its own, and a member that never held the token cannot
 * mint one (docs/architecture.md, Trust model).
 *
 * A token carries no swarm key: only where the join doors are (`door`, multiaddrs ending in
 * the door's `/p2p/` id, so the joiner authenticates the door). The swarm key is handed over
 * after admission, inside the door's Noise channel. Tokens of the old `plx1` form, which did
 * carry the swarm key, are refused with a hint.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as z from '../core/zod.ts';
import { b64u, fromB64u, type Signer, signerFromSecret } from '../crypto/ed25519.ts';
import { isSignedBlob, openBlob, type SignedBlob, signBlob } from '../crypto/signed.ts';
import { MAX_TOKEN_BYTES, MAX_TOKEN_CERT_BYTES } from './constants.ts';
import { TokenError } from './errors.ts';

const TOKEN_DOMAIN = 'plexus-token/2';
const PREFIX = 'plx2';
const B64U_KEY = /^[A-Za-z0-9_-]{43}$/;

/** The signed payload of a join token: its certificate's contents. */
export const tokenPayloadSchema = z.strictObject({
  /** Network id (derived from the admin public key). */
  net: z.string().regex(/^plx-[a-z0-9]{16}$/),
  /** Admin public key, base64url of 32 raw bytes. */
  adm: z.string().regex(B64U_KEY),
  /** The token key's public half, base64url of 32 raw bytes. */
  tk: z.string().regex(B64U_KEY),
  /** Multiaddrs of join doors, each ending in `/p2p/<door peer id>`. Empty for the first node. */
  door: z.array(z.string().min(1).max(512)).max(16),
  /** Issued at and expiry, unix seconds. */
  iat: z.number().int().positive(),
  exp: z.number().int().positive(),
  /** Token id (for uses, listing and revocation). */
  id: z.string().regex(/^[A-Za-z0-9_-]{8,32}$/),
  /** How many nodes may join with it, counted by every member. */
  uses: z.number().int().min(1).max(100_000),
  /** Tags every node joining with it carries. */
  tags: z.array(z.string().min(1).max(64)).max(32),
});

/** A join token's signed payload. */
export type TokenPayload = z.infer<typeof tokenPayloadSchema>;

/** A decoded join token: what it says, its certificate, and the token key that signs with it. */
export interface DecodedToken {
  payload: TokenPayload;
  /** The admin-signed payload, as admissions carry it. */
  cert: SignedBlob;
  /** The one-time token key (from the token's secret part). */
  key: Signer;
}

/** The network id for an admin public key: stable, short, and checkable from a token. */
export function networkIdOf(adminPublicKey: Uint8Array): string {
  const h = createHash('sha256').update('plexus-net/1').update(adminPublicKey).digest();
  // base36 keeps it lower-case and DNS-friendly.
  return `plx-${BigInt(`0x${h.subarray(0, 12).toString('hex')}`)
    .toString(36)
    .padStart(16, '0')
    .slice(-16)}`;
}

/**
 * A fresh token id: 12 base64url characters, never starting with `-`, which a CLI would read
 * as an option (`plexus token revoke -x…` failed for 1 id in 64).
 */
export function newTokenId(): string {
  for (;;) {
    const id = randomBytes(9).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** A fresh token key: the seed goes in the token text, the public half in its payload. */
export function newTokenKey(): { seed: Buffer; key: Signer } {
  const seed = randomBytes(32);
  return { seed, key: signerFromSecret(seed) };
}

/** Signs a token payload with the admin key and returns the token text (with the secret). */
export function encodeToken(payload: TokenPayload, admin: Signer, tokenSeed: Buffer): string {
  const cert = signBlob(TOKEN_DOMAIN, payload, admin);
  return `${PREFIX}.${cert.p}.${cert.s}.${b64u(tokenSeed)}`;
}

/** Signs a token certificate without making a token text (the first node's own admission). */
export function signTokenCert(payload: TokenPayload, admin: Signer): SignedBlob {
  return signBlob(TOKEN_DOMAIN, payload, admin);
}

/**
 * Checks a token certificate against the network's admin key and returns its payload. Pure:
 * expiry is the caller's question (an admission is judged by when it was first seen).
 */
export function openTokenCert(cert: unknown, adminPublicKey: Uint8Array): TokenPayload {
  if (!isSignedBlob(cert, MAX_TOKEN_CERT_BYTES))
    throw new TokenError('TOKEN_MALFORMED', 'token certificate is malformed');
  let raw: unknown;
  try {
    raw = openBlob(TOKEN_DOMAIN, cert, adminPublicKey, 'token');
  } catch {
    throw new TokenError(
      'TOKEN_TAMPERED',
      "token is not signed by this network's admin key",
      'unauthenticated',
    );
  }
  const parsed = tokenPayloadSchema.safeParse(raw);
  if (!parsed.success) throw new TokenError('TOKEN_MALFORMED', 'token payload is not valid');
  if (parsed.data.net !== networkIdOf(adminPublicKey) || parsed.data.adm !== b64u(adminPublicKey))
    throw new TokenError('WRONG_NETWORK', 'token belongs to another network', 'unauthenticated');
  return parsed.data;
}

/**
 * Decodes a token text and checks its format, its signature (against its own `adm`, which must
 * match `net`), that its secret is the key it names and, unless `now` is null, its expiry.
 * Throws TokenError with a one-line reason.
 */
export function decodeToken(token: string, now: number | null = Date.now()): DecodedToken {
  const text = token.trim();
  if (text.length > MAX_TOKEN_BYTES)
    throw new TokenError('TOKEN_MALFORMED', 'token is too long to be a plexus join token');
  const parts = text.split('.');
  if (parts[0] === 'plx1') {
    throw new TokenError(
      'TOKEN_OUTDATED',
      "this token is from an older plexus that put the swarm key in tokens; ask for a new one with 'plexus token create'",
    );
  }
  if (parts.length !== 4 || parts[0] !== PREFIX) {
    throw new TokenError(
      'TOKEN_MALFORMED',
      "not a plexus join token (expected 'plx2.…'); copy it whole from 'plexus token create'",
    );
  }
  let claimed: TokenPayload;
  try {
    claimed = tokenPayloadSchema.parse(JSON.parse(fromB64u(parts[1]).toString('utf8')));
  } catch {
    throw new TokenError('TOKEN_MALFORMED', 'token payload is corrupt; copy the token again');
  }
  const cert = { p: parts[1], s: parts[2] };
  const payload = openTokenCert(cert, fromB64u(claimed.adm));
  let key: Signer;
  try {
    key = signerFromSecret(fromB64u(parts[3]));
  } catch {
    throw new TokenError('TOKEN_MALFORMED', "token's secret part is corrupt; copy the token again");
  }
  if (b64u(key.publicKey) !== payload.tk)
    throw new TokenError('TOKEN_TAMPERED', "token's secret does not match its key: it was altered");
  if (now !== null && payload.exp * 1000 <= now) {
    const when = new Date(payload.exp * 1000).toISOString();
    throw new TokenError(
      'TOKEN_EXPIRED',
      `token expired at ${when}; ask for a new one with 'plexus token create'`,
      'unauthenticated',
    );
  }
  return { payload, cert, key };
}

/** Parses `1h`, `30m`, `7d`, `90s` or plain seconds; returns seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text.trim());
  if (!m) throw new TokenError('BAD_TTL', `bad duration '${text}': use forms like 90s, 30m, 1h, 7d`);
  const n = Number(m[1]);
  const mult = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const s = n * mult;
  if (s < 1 || s > 365 * 86400)
    throw new TokenError('BAD_TTL', `duration '${text}' must be between 1s and 365d`);
  return s;
}
