/** Errors of the crypto helpers. Tests assert on `name` or `code`, never on the message. */
import { PlexusError } from '../core/errors.ts';

/** Text that should be base64url holds other characters. */
export class BadEncodingError extends PlexusError {
  override name = 'BadEncodingError';
  constructor() {
    super('BAD_ENCODING', 'not base64url', 'invalid');
  }
}

/** A key file could not be read or parsed as JSON. */
export class KeyUnreadableError extends PlexusError {
  override name = 'KeyUnreadableError';
  constructor(path: string, detail: string) {
    super('KEY_UNREADABLE', `cannot read key ${path}: ${detail}`, 'invalid');
  }
}

/** A key file parsed, but is not a plexus key or holds a malformed or mismatched key. */
export class KeyInvalidError extends PlexusError {
  override name = 'KeyInvalidError';
  constructor(message: string) {
    super('KEY_INVALID', message, 'invalid');
  }
}

/** A signed blob's payload is not JSON. */
export class MalformedPayloadError extends PlexusError {
  override name = 'MalformedPayloadError';
  constructor(what: string) {
    super('MALFORMED', `${what}: payload is not valid JSON`, 'invalid');
  }
}

/** Signature or structure of a blob is wrong. */
export class BadSignatureError extends PlexusError {
  override name = 'BadSignatureError';
  constructor(what: string) {
    super('BAD_SIGNATURE', `${what}: signature does not verify`, 'unauthenticated');
  }
}
