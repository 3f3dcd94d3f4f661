/** The swarm-key rotation record: only the admin's, for exactly one key, newer than what is held. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { b64u, generateSigner } from '../../../src/crypto/ed25519.ts';
import { signBlob } from '../../../src/crypto/signed.ts';
import {
  keyIdOf,
  openRotation,
  type RotationPayload,
  signRotation,
  verifyKeyGrant,
} from '../../../src/mesh/rotation-record.ts';
import { codeOf } from '../../helpers/errors.ts';

const admin = generateSigner().signer;
const psk = randomBytes(32);
const now = Date.now();
const payload = (over: Partial<RotationPayload> = {}): RotationPayload => ({
  epoch: 3,
  keyId: keyIdOf(psk),
  switchAt: now + 10_000,
  at: now,
  revoked: [],
  ...over,
});
const grant = (rotation: unknown, key = psk) => ({ psk: key.toString('hex'), rotation });
describe('rotation record', () => {
  it('verifies a key with its admin-signed record', () => {
    const v = verifyKeyGrant(grant(signRotation(payload(), admin)), admin.publicKey, 2);
    assert.equal(v.payload.epoch, 3);
    assert.ok(v.psk.equals(psk));
  });

  it('refuses a record signed by another key (a member, or another network’s admin)', () => {
    const other = generateSigner().signer;
    assert.equal(
      codeOf(() => verifyKeyGrant(grant(signRotation(payload(), other)), admin.publicKey, 0)),
      'ROTATION_FORGED',
    );
  });

  it('refuses a record whose payload was changed after signing', () => {
    const blob = signRotation(payload(), admin);
    const forged = { p: b64u(JSON.stringify(payload({ epoch: 9 }))), s: blob.s };
    assert.equal(
      codeOf(() => openRotation(forged, admin.publicKey)),
      'ROTATION_FORGED',
    );
  });

  it('refuses an admin signature made for another purpose (domain separation)', () => {
    const revocationLike = signBlob('plexus-revoke/1', payload(), admin);
    assert.equal(
      codeOf(() => openRotation(revocationLike, admin.publicKey)),
      'ROTATION_FORGED',
    );
  });

  it('refuses a genuine record paired with another key', () => {
    const rotation = signRotation(payload(), admin);
    assert.equal(
      codeOf(() => verifyKeyGrant(grant(rotation, randomBytes(32)), admin.publicKey, 0)),
      'KEY_MISMATCH',
    );
  });

  it('refuses a record that is not newer than the epoch held (a replayed older rotation)', () => {
    const rotation = signRotation(payload(), admin);
    assert.equal(
      codeOf(() => verifyKeyGrant(grant(rotation), admin.publicKey, 3)),
      'ROTATION_STALE',
    );
    assert.equal(
      codeOf(() => verifyKeyGrant(grant(rotation), admin.publicKey, 7)),
      'ROTATION_STALE',
    );
  });

  it('refuses malformed keys, oversized and ill-formed records', () => {
    const rotation = signRotation(payload(), admin);
    assert.equal(
      codeOf(() => verifyKeyGrant({ psk: 'zz', rotation }, admin.publicKey, 0)),
      'KEY_MALFORMED',
    );
    const huge = { p: 'A'.repeat(64 * 1024), s: rotation.s };
    assert.equal(
      codeOf(() => openRotation(huge, admin.publicKey)),
      'ROTATION_MALFORMED',
    );
    assert.equal(
      codeOf(() => openRotation('nope', admin.publicKey)),
      'ROTATION_MALFORMED',
    );
    // Signed by the admin, but its switch a day out: refused by the schema, signed or not.
    const far = signBlob('plexus-swarm-rotation/1', payload({ switchAt: now + 86_400_000 }), admin);
    assert.equal(
      codeOf(() => openRotation(far, admin.publicKey)),
      'ROTATION_MALFORMED',
    );
    assert.throws(() => signRotation(payload({ epoch: 0 }), admin));
  });

  it('names each key by a hash under its own domain string', () => {
    assert.notEqual(keyIdOf(psk), keyIdOf(randomBytes(32)));
    assert.match(keyIdOf(psk), /^[A-Za-z0-9_-]{43}$/);
  });
});
