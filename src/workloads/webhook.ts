/**
 * Webhook deploys (issue 3): `POST /v1/hooks/APP` with `X-Plexus-Timestamp` (unix seconds) and
 * `X-Plexus-Signature: sha256=HEX`, where HEX is HMAC-SHA256(secret, timestamp + "." + body).
 * The timestamp must be within ±5 min, the comparison is constant-time, and a signature is
 * accepted once. Every failure is the same 401, so a caller learns nothing about which part
 * was wrong.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import * as z from '../core/zod.ts';
import { WEBHOOK_WINDOW_S } from './constants.ts';
import { InvalidSpecError, WebhookAuthError } from './errors.ts';

/** The body of a webhook call. */
export const webhookBodySchema = z.strictObject({
  url: z.string().min(1).max(4096),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'sha256 is 64 hex digits')
    .optional(),
});

/** Parses a verified call's body; anything but `{"url", "sha256"?}` is BAD_WEBHOOK_BODY. */
export function parseWebhookBody(body: Buffer): z.infer<typeof webhookBodySchema> {
  try {
    return webhookBodySchema.parse(JSON.parse(body.toString('utf8')));
  } catch {
    throw new InvalidSpecError(
      'BAD_WEBHOOK_BODY',
      'webhook body must be JSON {"url": "...", "sha256": "..."}',
    );
  }
}

/** The signature a sender computes. Exported for tests and the docs example. */
export function signWebhook(secret: string, timestamp: string | number, body: string | Buffer): string {
  const mac = createHmac('sha256', secret);
  mac.update(`${timestamp}.`);
  mac.update(body);
  return `sha256=${mac.digest('hex')}`;
}

/**
 * Checks a call's timestamp and signature against `secret` (undefined when the app has none:
 * refused the same way). Returns the signature's expiry (ms) for replay bookkeeping.
 */
export function verifyWebhook(
  secret: string | undefined,
  timestamp: string | undefined,
  signature: string | undefined,
  body: Buffer,
  nowMs = Date.now(),
): number {
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) throw new WebhookAuthError();
  const ts = Number(timestamp);
  const skew = Math.abs(nowMs / 1000 - ts);
  // Compute the MAC whatever happens above, so timing does not tell a missing secret apart.
  const expected = Buffer.from(signWebhook(secret ?? 'no-secret', timestamp, body));
  const given = Buffer.from(signature);
  const same = given.length === expected.length && timingSafeEqual(given, expected);
  if (!secret || !same || skew > WEBHOOK_WINDOW_S) throw new WebhookAuthError();
  return (ts + WEBHOOK_WINDOW_S) * 1000;
}
