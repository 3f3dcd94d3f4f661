/**
 * Ed25519 verification (src/crypto/ed25519.ts) with its cache of public keys: a cached key still
 * refuses a forged or altered message, a key that is no curve point is refused (and never
 * cached), and keys pushed out of the bounded cache by many others still verify.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateSigner, verifyEd25519 } from '../../../src/crypto/ed25519.ts';

const message = Buffer.from('{"peerId":"12D3KooW","name":"web-2","at":1}');

describe('verifyEd25519', () => {
  it('accepts the signer and refuses an altered message or a signature by another key, cached or not', () => {
    const { signer } = generateSigner();
    const { signer: other } = generateSigner();
    const sig = signer.sign(message);
    for (let round = 0; round < 2; round++) {
      assert.equal(verifyEd25519(signer.publicKey, message, sig), true);
      assert.equal(verifyEd25519(signer.publicKey, Buffer.from(`${message}x`), sig), false);
      assert.equal(verifyEd25519(signer.publicKey, message, other.sign(message)), false);
      assert.equal(verifyEd25519(other.publicKey, message, sig), false);
    }
  });

  it('refuses malformed keys and signatures without throwing', () => {
    const { signer } = generateSigner();
    const sig = signer.sign(message);
    assert.equal(verifyEd25519(signer.publicKey.subarray(0, 31), message, sig), false);
    assert.equal(verifyEd25519(signer.publicKey, message, sig.subarray(0, 63)), false);
    // y = 2 has no x on the curve: not a public key at all.
    const notAPoint = Buffer.alloc(32);
    notAPoint[0] = 2;
    assert.equal(verifyEd25519(notAPoint, message, sig), false);
    assert.equal(verifyEd25519(notAPoint, message, sig), false);
  });

  it('still verifies with a key after many others went through the bounded cache', () => {
    const first = generateSigner().signer;
    const sig = first.sign(message);
    assert.equal(verifyEd25519(first.publicKey, message, sig), true);
    for (let i = 0; i < 100; i++) {
      const s = generateSigner().signer;
      assert.equal(verifyEd25519(s.publicKey, message, s.sign(message)), true);
    }
    assert.equal(verifyEd25519(first.publicKey, message, sig), true);
    assert.equal(verifyEd25519(first.publicKey, message, Buffer.alloc(64)), false);
  });
});
