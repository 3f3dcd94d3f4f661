/**
 * Release signatures: `SHA256SUMS.sig` is an Ed25519 signature, under its own domain string, over
 * the bytes of `SHA256SUMS`, which lists the sha256 of each tarball. A host trusts the release key
 * whose public half it was installed with (`ETC/release.pub`), so an upgrade checks who built what
 * it installs, and a mirror or a member relaying a release cannot swap it.
 */
import { readFileSync } from 'node:fs';
import { b64u, fromB64u, keyId, type Signer, verifyEd25519 } from '../crypto/ed25519.ts';
import { MAX_SUMS_BYTES, RELEASE_SIG_DOMAIN } from './constants.ts';
import { ReleaseRefusedError } from './errors.ts';

/** The `.sig` file beside SHA256SUMS. */
export interface ReleaseSignature {
  type: 'plexus-release-signature';
  kid: string;
  sig: string;
}

/** A trusted release public key, as `release.pub` holds it. */
export interface ReleasePublicKey {
  type: 'plexus-release-key';
  kid: string;
  publicKey: string;
}

const signed = (sums: Uint8Array) => Buffer.concat([Buffer.from(`${RELEASE_SIG_DOMAIN}\n`), sums]);

/** Signs the bytes of a SHA256SUMS file. */
export function signSums(sums: Uint8Array, signer: Signer): ReleaseSignature {
  return { type: 'plexus-release-signature', kid: signer.kid, sig: b64u(signer.sign(signed(sums))) };
}

/** The public half of a release key, for `release.pub`. */
export function releasePublicKey(signer: Signer): ReleasePublicKey {
  return { type: 'plexus-release-key', kid: signer.kid, publicKey: b64u(signer.publicKey) };
}

/** Parses a `release.pub` (text); throws UNTRUSTED_RELEASE_KEY when it is not one. */
export function parseReleasePublicKey(text: string, source: string): Buffer {
  try {
    if (text.length > 4096) throw new Error('too large');
    const k = JSON.parse(text) as ReleasePublicKey;
    const pub = fromB64u(k.publicKey);
    if (k.type !== 'plexus-release-key' || pub.length !== 32 || keyId(pub) !== k.kid)
      throw new Error('malformed');
    return pub;
  } catch {
    throw new ReleaseRefusedError('UNTRUSTED_RELEASE_KEY', `${source} is not a plexus release public key`);
  }
}

/** Reads the trusted release key; a host installed without one refuses every upgrade. */
export function readTrustedKey(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ReleaseRefusedError(
      'UNTRUSTED_RELEASE_KEY',
      `no trusted release key at ${path}: this host was installed from an unsigned release; put the release key's release.pub there first`,
    );
  }
  return parseReleasePublicKey(text, path);
}

/** Checks `sig` (the .sig file's text) over `sums` with the trusted key; throws BAD_SIGNATURE. */
export function verifySums(sums: Uint8Array, sigText: string, trusted: Uint8Array): void {
  let sig: ReleaseSignature;
  try {
    if (sigText.length > 1024) throw new Error('too large');
    sig = JSON.parse(sigText) as ReleaseSignature;
    if (sig.type !== 'plexus-release-signature' || typeof sig.sig !== 'string') throw new Error('shape');
  } catch {
    throw new ReleaseRefusedError('BAD_SIGNATURE', 'SHA256SUMS.sig is not a plexus release signature');
  }
  if (sig.kid !== keyId(trusted)) {
    throw new ReleaseRefusedError(
      'BAD_SIGNATURE',
      `SHA256SUMS is signed by release key ${sig.kid}, not by the trusted key ${keyId(trusted)}`,
    );
  }
  let raw: Buffer;
  try {
    raw = fromB64u(sig.sig);
  } catch {
    raw = Buffer.alloc(0);
  }
  if (!verifyEd25519(trusted, signed(sums), raw)) {
    throw new ReleaseRefusedError(
      'BAD_SIGNATURE',
      'the signature of SHA256SUMS does not verify: the file or the signature was changed',
    );
  }
}

/** The sha256 SHA256SUMS lists for `fileName`, or undefined. */
export function sumFor(sums: Uint8Array, fileName: string): string | undefined {
  if (sums.length > MAX_SUMS_BYTES) return undefined;
  for (const line of Buffer.from(sums).toString('utf8').split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (m && m[2] === fileName) return m[1];
  }
  return undefined;
}
