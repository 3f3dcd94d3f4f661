/**
 * Join tokens: `plx1.<base64url(payload)>.<base64url(sig)>`, signed by the network's admin key.
 * The payload carries the swarm key, so a token is a secret. It also carries the admin public
 * key (`adm`), and the network id is derived from it, so a joining node can check a token's
 * signature and expiry offline before it writes anything.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { b64u, fromB64u, type Signer, verifyEd25519 } from '../crypto/ed25519.ts';
import { signingBytes } from '../crypto/signed.ts';
import { MAX_TOKEN_BYTES } from './constants.ts';
import { TokenError } from './errors.ts';

const TOKEN_DOMAIN = 'plexus-token/1';
const PREFIX = 'plx1';

/** The decoded payload of a join token. */
export const tokenPayloadSchema = z.strictObject({
  /** Network id (derived from the admin public key). */
  net: z.string().regex(/^plx-[a-z0-9]{16}$/),
  /** Admin public key, base64url of 32 raw bytes. */
  adm: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  /** Swarm pre-shared key, 64 hex characters. */
  psk: z.string().regex(/^[0-9a-f]{64}$/),
  /** Multiaddrs of nodes that can admit the joiner. */
  bootstrap: z.array(z.string().min(1).max(512)).min(1).max(32),
  /** Expiry, unix seconds. */
  exp: z.number().int().positive(),
  /** Token id (for uses, listing and revocation). */
  id: z.string().regex(/^[A-Za-z0-9_-]{8,32}$/),
  /** How many nodes may join with it. */
  uses: z.number().int().min(1).max(100_000),
  /** Tags given to nodes that join with it. */
  tags: z.array(z.string().min(1).max(64)).max(32),
});

/** A join token's payload. */
export type TokenPayload = z.infer<typeof tokenPayloadSchema>;

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

/** Encodes and signs a token. */
export function encodeToken(payload: TokenPayload, admin: Signer): string {
  const p = b64u(JSON.stringify(payload));
  const s = b64u(admin.sign(signingBytes(TOKEN_DOMAIN, p)));
  return `${PREFIX}.${p}.${s}`;
}

/**
 * Decodes a token and checks its format, signature (against its own `adm`, which must also
 * match `net`) and, unless `now` is null, its expiry. Throws TokenError with a one-line reason.
 */
export function decodeToken(token: string, now: number | null = Date.now()): TokenPayload {
  const text = token.trim();
  if (text.length > MAX_TOKEN_BYTES)
    throw new TokenError('TOKEN_MALFORMED', 'token is too long to be a plexus join token');
  const parts = text.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) {
    throw new TokenError(
      'TOKEN_MALFORMED',
      "not a plexus join token (expected 'plx1.…'); copy it whole from 'plexus token create'",
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fromB64u(parts[1]).toString('utf8'));
  } catch {
    throw new TokenError('TOKEN_MALFORMED', 'token payload is corrupt; copy the token again');
  }
  const parsed = tokenPayloadSchema.safeParse(raw);
  if (!parsed.success)
    throw new TokenError('TOKEN_MALFORMED', 'token payload is not valid; copy the token again');
  const payload = parsed.data;
  const adm = fromB64u(payload.adm);
  let sig: Buffer;
  try {
    sig = fromB64u(parts[2]);
  } catch {
    throw new TokenError(
      'TOKEN_TAMPERED',
      'token signature is corrupt; copy the token again',
      'unauthenticated',
    );
  }
  if (networkIdOf(adm) !== payload.net || !verifyEd25519(adm, signingBytes(TOKEN_DOMAIN, parts[1]), sig)) {
    throw new TokenError(
      'TOKEN_TAMPERED',
      'token signature does not verify: it was altered or truncated',
      'unauthenticated',
    );
  }
  if (now !== null && payload.exp * 1000 <= now) {
    const when = new Date(payload.exp * 1000).toISOString();
    throw new TokenError(
      'TOKEN_EXPIRED',
      `token expired at ${when}; ask for a new one with 'plexus token create'`,
      'unauthenticated',
    );
  }
  return payload;
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
