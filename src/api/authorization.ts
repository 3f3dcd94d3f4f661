/**
 * Credentials in an `Authorization` header (issue 12). `Plexus <base64url(JSON(envelope))>`
 * carries a signed command envelope, so a plain GET (a chart polling `/v1/telemetry`) is signed
 * like any command and checked by the same command service (key, signature, times, target,
 * replay). `Bearer <token>` is the shared secret Prometheus sends to `/metrics`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { MAX_ENVELOPE_BYTES } from '../commands/constants.ts';
import type { Envelope } from '../commands/envelope.ts';
import { BadAuthorizationError } from './errors.ts';

/** The scheme of a signed-envelope credential. */
export const PLEXUS_AUTH_SCHEME = 'Plexus';

/** The `Authorization` value that carries `envelope` (for clients: a dashboard, a script). */
export function plexusAuthorization(envelope: Envelope): string {
  return `${PLEXUS_AUTH_SCHEME} ${Buffer.from(JSON.stringify(envelope)).toString('base64url')}`;
}

/**
 * The envelope in an `Authorization: Plexus …` header, still to be verified; undefined when the
 * header is absent or uses another scheme. A Plexus credential that is not base64url JSON throws.
 */
export function envelopeOfAuthorization(header: string | undefined): unknown {
  if (!header) return undefined;
  const m = /^(\S+)(?:\s+(\S*))?\s*$/.exec(header);
  if (!m || m[1].toLowerCase() !== PLEXUS_AUTH_SCHEME.toLowerCase()) return undefined;
  const text = m[2] ?? '';
  if (text.length === 0 || text.length > MAX_ENVELOPE_BYTES || !/^[A-Za-z0-9_-]+$/.test(text))
    throw new BadAuthorizationError();
  try {
    return JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new BadAuthorizationError();
  }
}

/** True when `header` is `Bearer <token>`; compared in constant time, whatever the lengths. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(m[1]), digest(token));
}
