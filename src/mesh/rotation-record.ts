/**
 * The swarm-key rotation record (docs/architecture.md, Trust model: Rotating the swarm key):
 * `{epoch, keyId, switchAt, at, revoked}` signed by the admin key under its own domain string.
 * `keyId` is a hash of the new key under a domain string of its own, so a record names exactly
 * one key: a member that is handed a key with a record checks both back to the admin key, and
 * no member can pass off a key of its own making, or pair a genuine record with another key.
 * The record itself is no secret (the key is not in it). Pure and light (node:crypto, zod).
 */
import { createHash } from 'node:crypto';
import * as z from '../core/zod.ts';
import type { Signer } from '../crypto/ed25519.ts';
import { isSignedBlob, openBlob, type SignedBlob, signBlob } from '../crypto/signed.ts';
import { MAX_ROTATION_BYTES, MAX_ROTATION_LEAD_MS, MAX_ROTATION_REVOKED } from './constants.ts';
import { SwarmKeyError } from './errors.ts';

const ROTATION_DOMAIN = 'plexus-swarm-rotation/1';
const KEY_ID_DOMAIN = 'plexus-swarm-key-id/1';

/** What the admin signs to move the mesh to a new swarm key. */
export const rotationPayloadSchema = z
  .strictObject({
    /** The new key's epoch: the previous one + 1 (the key made at init is epoch 0). */
    epoch: z
      .number()
      .int()
      .min(1)
      .max(2 ** 31),
    /** `keyIdOf(psk)` of the new key. */
    keyId: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    /** When members switch new connections to it (ms); one that learns it later switches at once. */
    switchAt: z.number().int().positive(),
    /** Signing time (ms). */
    at: z.number().int().positive(),
    /** Peer ids of recently revoked nodes: no member hands them this key, whatever it knows. */
    revoked: z.array(z.string().min(1).max(128)).max(MAX_ROTATION_REVOKED),
  })
  .refine((r) => r.switchAt >= r.at && r.switchAt - r.at <= MAX_ROTATION_LEAD_MS, {
    message: 'switchAt must lie within an hour after at',
  });

/** A rotation record's payload. */
export type RotationPayload = z.infer<typeof rotationPayloadSchema>;

/** The id of a 32-byte swarm key: sha256 over a domain string and the key, base64url. */
export function keyIdOf(psk: Uint8Array): string {
  return createHash('sha256').update(`${KEY_ID_DOMAIN}\n`).update(psk).digest('base64url');
}

/** Signs a rotation record with the admin key. */
export function signRotation(payload: RotationPayload, admin: Signer): SignedBlob {
  return signBlob(ROTATION_DOMAIN, rotationPayloadSchema.parse(payload), admin);
}

/** Verifies a rotation record against the admin key; returns its payload. Throws SwarmKeyError. */
export function openRotation(blob: unknown, adminPublicKey: Uint8Array): RotationPayload {
  if (!isSignedBlob(blob, MAX_ROTATION_BYTES))
    throw new SwarmKeyError('ROTATION_MALFORMED', 'swarm-key rotation record is malformed');
  let payload: unknown;
  try {
    payload = openBlob(ROTATION_DOMAIN, blob, adminPublicKey, 'swarm-key rotation record');
  } catch {
    throw new SwarmKeyError(
      'ROTATION_FORGED',
      'swarm-key rotation record is not signed by this network’s admin key',
      'unauthenticated',
    );
  }
  const parsed = rotationPayloadSchema.safeParse(payload);
  if (!parsed.success)
    throw new SwarmKeyError(
      'ROTATION_MALFORMED',
      `swarm-key rotation record is invalid: ${parsed.error.issues[0].message}`,
    );
  return parsed.data;
}

/** A swarm key with the record that vouches for it, verified. */
export interface VerifiedKey {
  psk: Buffer;
  rotation: SignedBlob;
  payload: RotationPayload;
}

/**
 * Checks a key handed over by a member or a door: a 64-hex key, a record signed by the admin,
 * the record's keyId is this key's, and its epoch is newer than `heldEpoch`. Throws SwarmKeyError.
 */
export function verifyKeyGrant(
  grant: { psk?: unknown; rotation?: unknown },
  adminPublicKey: Uint8Array,
  heldEpoch: number,
): VerifiedKey {
  if (typeof grant.psk !== 'string' || !/^[0-9a-f]{64}$/.test(grant.psk))
    throw new SwarmKeyError('KEY_MALFORMED', 'the swarm key handed over is not 32 bytes of hex');
  const psk = Buffer.from(grant.psk, 'hex');
  const payload = openRotation(grant.rotation, adminPublicKey);
  if (payload.keyId !== keyIdOf(psk))
    throw new SwarmKeyError(
      'KEY_MISMATCH',
      'the swarm key handed over is not the one its rotation record names',
      'unauthenticated',
    );
  if (payload.epoch <= heldEpoch)
    throw new SwarmKeyError(
      'ROTATION_STALE',
      `swarm-key epoch ${payload.epoch} is not newer than the ${heldEpoch} held here`,
      'conflict',
    );
  const blob = grant.rotation as SignedBlob;
  return { psk, rotation: { p: blob.p, s: blob.s }, payload };
}
