import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkValidity,
  decodeEnvelope,
  signCommand,
  signFrame,
  verifyEnvelopeSignature,
  verifyFrame,
} from '../../../src/commands/envelope.ts';
import { generateSigner } from '../../../src/crypto/ed25519.ts';
import { ed25519KeyOfPeerId } from '../../../src/crypto/peer-key.ts';
import { peerIdOf } from '../../../src/mesh/peer-ids.ts';
import { codeOf } from '../../helpers/errors.ts';

const op = generateSigner().signer;
const node = generateSigner().signer;
const target = peerIdOf(node.publicKey);

describe('command envelopes', () => {
  it('round-trips: decode, verify and check a fresh envelope', () => {
    const { envelope, payload } = signCommand(op, { target, action: 'node.status', args: { a: 1 } });
    const decoded = decodeEnvelope(JSON.parse(JSON.stringify(envelope)));
    assert.deepEqual(decoded.payload, payload);
    verifyEnvelopeSignature(decoded.envelope, op.publicKey);
    checkValidity(decoded.payload);
    assert.equal(envelope.kid, op.kid);
    assert.equal(payload.exp - payload.iat, 60);
  });

  it('refuses tampering, the wrong key and malformed envelopes', () => {
    const { envelope, payload } = signCommand(op, { target, action: 'node.exec', args: { cmd: 'true' } });
    const tampered = {
      ...envelope,
      payload: Buffer.from(JSON.stringify({ ...payload, args: { cmd: 'rm' } })).toString('base64url'),
    };
    assert.equal(
      codeOf(() => verifyEnvelopeSignature(decodeEnvelope(tampered).envelope, op.publicKey)),
      'BAD_SIGNATURE',
    );
    assert.equal(
      codeOf(() => verifyEnvelopeSignature(envelope, node.publicKey)),
      'BAD_SIGNATURE',
    );
    for (const bad of [
      null,
      'x',
      { v: 2 },
      { ...envelope, v: 2 },
      { ...envelope, payload: '!!' },
      { ...envelope, kid: 'short' },
    ])
      assert.equal(
        codeOf(() => decodeEnvelope(bad)),
        'BAD_ENVELOPE',
      );
    const noId = Buffer.from(JSON.stringify({ ...payload, id: undefined })).toString('base64url');
    assert.equal(
      codeOf(() => decodeEnvelope({ ...envelope, payload: noId })),
      'BAD_ENVELOPE',
    );
  });

  it('enforces iat within ±60 s, exp - iat ≤ 300 s and expiry', () => {
    const now = Date.now();
    const at = (offsetS: number, ttlS = 60) =>
      signCommand(op, { target, action: 'x', ttlS }, now + offsetS * 1000).payload;
    assert.equal(
      codeOf(() => checkValidity(at(0), now)),
      undefined,
    );
    assert.equal(
      codeOf(() => checkValidity(at(-59), now)),
      undefined,
    );
    assert.equal(
      codeOf(() => checkValidity(at(-61, 300), now)),
      'EXPIRED',
    );
    assert.equal(
      codeOf(() => checkValidity(at(-70), now)),
      'EXPIRED',
    );
    assert.equal(
      codeOf(() => checkValidity(at(59), now)),
      undefined,
    );
    assert.equal(
      codeOf(() => checkValidity(at(61), now)),
      'FUTURE_DATED',
    );
    assert.equal(
      codeOf(() => checkValidity(at(0, 300), now)),
      undefined,
    );
    assert.equal(
      codeOf(() => checkValidity(at(0, 301), now)),
      'TTL_TOO_LONG',
    );
  });

  it('reply frames: verified in order, and any change, reorder or other signer is detected', () => {
    const id = 'abcdefghijklmnop';
    const f0 = signFrame(node, target, id, 0, { type: 'data', data: { stream: 'stdout', data: 'hi' } });
    const f1 = signFrame(node, target, id, 1, { type: 'result', result: { exitCode: 0 } });
    const key = ed25519KeyOfPeerId(target)!;
    assert.deepEqual(verifyFrame(key, target, id, 0, JSON.parse(JSON.stringify(f0))), {
      type: 'data',
      data: { stream: 'stdout', data: 'hi' },
    });
    verifyFrame(key, target, id, 1, f1);
    assert.equal(
      codeOf(() => verifyFrame(key, target, id, 1, f0)),
      'REPLY_TAMPERED',
    );
    assert.equal(
      codeOf(() => verifyFrame(key, target, 'otheridotheridxx', 0, f0)),
      'REPLY_TAMPERED',
    );
    assert.equal(
      codeOf(() => verifyFrame(key, target, id, 1, { ...f1, result: { exitCode: 1 } })),
      'REPLY_TAMPERED',
    );
    const other = generateSigner().signer;
    const forged = signFrame(other, target, id, 0, { type: 'result', result: 1 });
    assert.equal(
      codeOf(() => verifyFrame(key, target, id, 0, forged)),
      'REPLY_TAMPERED',
    );
  });

  it('decodes the Ed25519 key inside a peer id without libp2p', () => {
    assert.deepEqual(ed25519KeyOfPeerId(target), node.publicKey);
    assert.equal(ed25519KeyOfPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'), undefined);
    assert.equal(ed25519KeyOfPeerId('not-a-peer-id'), undefined);
  });
});
