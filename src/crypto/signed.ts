/**
 * Signed blobs: `{p, s}` where `p` is base64url(JSON) and `s` is Ed25519 over
 * `"<domain>\n" + p`. Signing the encoded text rather than re-serialised JSON means there is no
 * canonicalisation to get wrong, and the domain string keeps a signature for one purpose from
 * being replayed as another (a token signature is never a valid command signature).
 */
import { b64u, fromB64u, type Signer, verifyEd25519 } from './ed25519.ts';
import { BadSignatureError, MalformedPayloadError } from './errors.ts';

/** A signed payload as it travels and is stored. */
export interface SignedBlob {
  /** base64url of the JSON payload. */
  p: string;
  /** base64url of the signature. */
  s: string;
}

/** The bytes a blob's signature covers. */
export function signingBytes(domain: string, payloadB64: string): Buffer {
  return Buffer.from(`${domain}\n${payloadB64}`, 'utf8');
}

/** Signs `payload` under `domain`. */
export function signBlob(domain: string, payload: unknown, signer: Signer): SignedBlob {
  const p = b64u(JSON.stringify(payload));
  return { p, s: b64u(signer.sign(signingBytes(domain, p))) };
}

/** Checks a value has the blob shape and sizes, without verifying. */
export function isSignedBlob(value: unknown, maxBytes: number): value is SignedBlob {
  const v = value as SignedBlob;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.p === 'string' &&
    typeof v.s === 'string' &&
    v.p.length <= maxBytes &&
    v.s.length <= 128
  );
}

/** Decodes a blob's payload JSON (unverified). */
export function decodePayload(blob: SignedBlob, what: string): unknown {
  try {
    return JSON.parse(fromB64u(blob.p).toString('utf8'));
  } catch {
    throw new MalformedPayloadError(what);
  }
}

/** Verifies a blob with `publicKey` and returns its payload; throws BadSignatureError. */
export function openBlob(domain: string, blob: SignedBlob, publicKey: Uint8Array, what: string): unknown {
  let sig: Buffer;
  try {
    sig = fromB64u(blob.s);
  } catch {
    throw new BadSignatureError(what);
  }
  if (!verifyEd25519(publicKey, signingBytes(domain, blob.p), sig)) throw new BadSignatureError(what);
  return decodePayload(blob, what);
}
