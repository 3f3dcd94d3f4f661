import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateSigner } from '../../../src/crypto/ed25519.ts';
import {
  decodeToken,
  encodeToken,
  networkIdOf,
  newTokenId,
  parseTtl,
  type TokenPayload,
} from '../../../src/mesh/token.ts';
import { codeOf } from '../../helpers/errors.ts';

function payload(admin = generateSigner().signer, over: Partial<TokenPayload> = {}): TokenPayload {
  return {
    net: networkIdOf(admin.publicKey),
    adm: admin.publicKey.toString('base64url'),
    psk: 'ab'.repeat(32),
    bootstrap: ['/ip4/127.0.0.1/tcp/7070/p2p/12D3KooWQ3xHs5bXmEV84BqS98CWgdmzEbiEJJBeZ3W3sipFhjQ1'],
    exp: Math.floor(Date.now() / 1000) + 3600,
    id: 'tok_abcdefgh',
    uses: 2,
    tags: ['edge'],
    ...over,
  };
}

describe('join token codec', () => {
  it('round-trips a signed token', () => {
    const { signer } = generateSigner();
    const p = payload(signer);
    const token = encodeToken(p, signer);
    assert.match(token, /^plx1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeToken(token), p);
  });

  it('refuses an expired token, but decodes it when expiry is not checked', () => {
    const { signer } = generateSigner();
    const token = encodeToken(payload(signer, { exp: Math.floor(Date.now() / 1000) - 1 }), signer);
    assert.equal(
      codeOf(() => decodeToken(token)),
      'TOKEN_EXPIRED',
    );
    assert.equal(decodeToken(token, null).id, 'tok_abcdefgh');
  });

  it('refuses a tampered payload', () => {
    const { signer } = generateSigner();
    const p = payload(signer);
    const token = encodeToken(p, signer);
    const [pre, , sig] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...p, uses: 1000 })).toString('base64url');
    assert.equal(
      codeOf(() => decodeToken(`${pre}.${forged}.${sig}`)),
      'TOKEN_TAMPERED',
    );
  });

  it('refuses a token re-signed by another key that claims the same network', () => {
    const real = generateSigner().signer;
    const other = generateSigner().signer;
    // Same net id, but the attacker signs and swaps in its own key: net no longer matches adm.
    const token = encodeToken(payload(real, { adm: other.publicKey.toString('base64url') }), other);
    assert.equal(
      codeOf(() => decodeToken(token)),
      'TOKEN_TAMPERED',
    );
  });

  it('refuses truncated, garbage and oversized input', () => {
    const { signer } = generateSigner();
    const token = encodeToken(payload(signer), signer);
    assert.equal(
      codeOf(() => decodeToken(token.slice(0, -10))),
      'TOKEN_TAMPERED',
    );
    assert.equal(
      codeOf(() => decodeToken('hello')),
      'TOKEN_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeToken('plx1.!!!.???')),
      'TOKEN_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeToken(`plx1.${'a'.repeat(20000)}.b`)),
      'TOKEN_MALFORMED',
    );
  });

  it('parses ttls', () => {
    assert.equal(parseTtl('90s'), 90);
    assert.equal(parseTtl('30m'), 1800);
    assert.equal(parseTtl('1h'), 3600);
    assert.equal(parseTtl('7d'), 7 * 86400);
    assert.equal(
      codeOf(() => parseTtl('1y')),
      'BAD_TTL',
    );
    assert.equal(
      codeOf(() => parseTtl('0s')),
      'BAD_TTL',
    );
  });

  it('makes token ids a CLI cannot mistake for options', () => {
    // 1 base64url id in 64 starts with '-'; 2000 draws miss one with probability ~1e-14.
    for (let i = 0; i < 2000; i++) {
      const id = newTokenId();
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{11}$/);
    }
  });
});
