/**
 * Ed25519 keys, signatures and base64url, on node:crypto only, so that the CLI can sign tokens
 * and commands without loading libp2p. Admin and operator keys are stored as small JSON files;
 * a libp2p node key converts to the same signer with `signerFromSeed`.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { BadEncodingError, KeyInvalidError, KeyUnreadableError } from './errors.ts';

/** Encodes bytes as unpadded base64url. */
export function b64u(bytes: Uint8Array | string): string {
  return Buffer.from(bytes as Uint8Array).toString('base64url');
}

/** Decodes unpadded base64url; throws on characters outside the alphabet. */
export function fromB64u(text: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new BadEncodingError();
  return Buffer.from(text, 'base64url');
}

/** Something that signs with an Ed25519 key. */
export interface Signer {
  /** Raw 32-byte public key. */
  publicKey: Buffer;
  /** Key id: the first 16 base64url chars of sha256(publicKey). */
  kid: string;
  sign(message: Uint8Array): Buffer;
}

/** The key id of a raw public key. */
export function keyId(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('base64url').slice(0, 16);
}

function signerFromKeyObject(priv: KeyObject): Signer {
  const jwk = createPublicKey(priv).export({ format: 'jwk' });
  const publicKey = fromB64u(jwk.x as string);
  return {
    publicKey,
    kid: keyId(publicKey),
    sign: (message) => nodeSign(null, message, priv),
  };
}

/** A signer from a 32-byte seed (and its public key). */
export function signerFromSeed(seed: Uint8Array, publicKey: Uint8Array): Signer {
  const priv = createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: b64u(seed), x: b64u(publicKey) },
    format: 'jwk',
  });
  return signerFromKeyObject(priv);
}

// PKCS#8 DER header of an Ed25519 private key: the 32-byte seed follows it.
const ED25519_PKCS8_HEADER = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A signer from a 32-byte seed alone (its public key is derived). */
export function signerFromSecret(seed: Uint8Array): Signer {
  if (seed.length !== 32) throw new KeyInvalidError('an Ed25519 secret key is 32 bytes');
  const priv = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_HEADER, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  return signerFromKeyObject(priv);
}

/** Generates a fresh key pair, returned with its seed for storage. */
export function generateSigner(): { signer: Signer; seed: Buffer } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return { signer: signerFromKeyObject(privateKey), seed: fromB64u(jwk.d as string) };
}

/**
 * Public keys as node:crypto KeyObjects, by their base64url form. A few keys sign nearly
 * everything a node checks (the admin key every token certificate and grant, a token key each
 * node it admitted, members' keys their records), and importing one from JWK for each check cost
 * a third more per verification (106 against 79 µs, 3000 verifications in a loop on a loaded
 * 2-core machine). Bounded, oldest out first: keys from the network are not trusted to be few.
 */
const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_PUBLIC_KEYS = 64;

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const x = b64u(publicKey);
  let key = publicKeys.get(x);
  if (!key) {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    if (publicKeys.size >= MAX_CACHED_PUBLIC_KEYS)
      publicKeys.delete(publicKeys.keys().next().value as string);
    publicKeys.set(x, key);
  }
  return key;
}

/** Verifies an Ed25519 signature; false for any malformed input. */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return nodeVerify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

/** The on-disk form of an admin or operator key (mode 0600). */
export interface KeyFile {
  type: 'plexus-ed25519';
  kid: string;
  publicKey: string;
  secretKey: string;
}

/** Writes a new key file; returns its signer. */
export function writeKeyFile(path: string, seed: Buffer, signer: Signer): void {
  const file: KeyFile = {
    type: 'plexus-ed25519',
    kid: signer.kid,
    publicKey: b64u(signer.publicKey),
    secretKey: b64u(seed),
  };
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
}

/** Reads a key file written by `writeKeyFile`. */
export function readKeyFile(path: string): Signer {
  let parsed: KeyFile;
  try {
    const text = readFileSync(path, 'utf8');
    if (text.length > 4096) throw new Error('file too large');
    parsed = JSON.parse(text) as KeyFile;
  } catch (err) {
    throw new KeyUnreadableError(path, (err as Error).message);
  }
  if (
    parsed?.type !== 'plexus-ed25519' ||
    typeof parsed.secretKey !== 'string' ||
    typeof parsed.publicKey !== 'string'
  ) {
    throw new KeyInvalidError(`${path} is not a plexus key file`);
  }
  const seed = fromB64u(parsed.secretKey);
  const pub = fromB64u(parsed.publicKey);
  if (seed.length !== 32 || pub.length !== 32) throw new KeyInvalidError(`${path} holds a malformed key`);
  const signer = signerFromSeed(seed, pub);
  if (!signer.publicKey.equals(pub)) throw new KeyInvalidError(`${path}: public key does not match`);
  return signer;
}
