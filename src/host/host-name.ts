/**
 * Which host names the edge serves: a fully qualified DNS name a certificate can be issued for
 * (RFC 1035 and 1123 as ACME CAs apply them). Checked strictly, because the name goes into
 * Caddy's config and into certificate requests: no wildcard (that needs a DNS challenge), no IP
 * address, no trailing dot, no empty, over-long or hyphen-edged label, and a last label that is
 * not all digits.
 */
import { isIP } from 'node:net';
import * as z from '../core/zod.ts';
import { InvalidHostError } from './errors.ts';

/** The longest name DNS carries (253 characters in text form). */
export const MAX_HOST_LENGTH = 253;
const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Checks `host` and returns it in lower case; an InvalidHostError says what is wrong. */
export function normalizeHost(host: string): string {
  const h = host.toLowerCase();
  if (h.length === 0) throw new InvalidHostError(host, 'it is empty');
  if (h.length > MAX_HOST_LENGTH)
    throw new InvalidHostError(host, `longer than ${MAX_HOST_LENGTH} characters`);
  if (isIP(h) || /^\[.*\]$/.test(h))
    throw new InvalidHostError(host, 'an IP address gets no certificate here; use a name');
  if (h.startsWith('*'))
    throw new InvalidHostError(host, 'wildcards need a DNS challenge, which the edge does not do');
  const labels = h.split('.');
  if (labels.length < 2) throw new InvalidHostError(host, 'it needs at least two labels (app.example.com)');
  for (const label of labels) {
    if (label.length === 0)
      throw new InvalidHostError(host, 'it has an empty label (two dots, or a dot at an end)');
    if (label.length > 63) throw new InvalidHostError(host, 'a label is longer than 63 characters');
    if (!LABEL_RE.test(label))
      throw new InvalidHostError(host, 'a label may hold only a-z, 0-9 and inner hyphens');
  }
  if (/^[0-9]+$/.test(labels.at(-1)!)) throw new InvalidHostError(host, 'the last label is all digits');
  return h;
}

/** The zod shape of a host argument: bounded, then checked by `normalizeHost` in the handler. */
export const hostArgSchema = z.string().min(1).max(MAX_HOST_LENGTH);
