import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { b64u, generateSigner } from '../../../src/crypto/ed25519.ts';
import {
  decodeToken,
  encodeToken,
  newTokenId,
  newTokenKey,
  openTokenCert,
  parseTtl,
} from '../../../src/mesh/token.ts';
import { testNetwork } from '../../helpers/admissions.ts';
import { codeOf } from '../../helpers/errors.ts';

describe('join token codec', () => {
  it('round-trips a signed token with its one-time key, and carries no swarm key', () => {
    const net = testNetwork();
    const { text, decoded } = net.token({ uses: 2, tags: ['edge'] });
    assert.match(text, /^plx2\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    const again = decodeToken(text);
    assert.deepEqual(again.payload, decoded.payload);
    assert.equal(b64u(again.key.publicKey), again.payload.tk);
    assert.equal('psk' in again.payload, false);
    assert.deepEqual(openTokenCert(again.cert, net.admin.publicKey), again.payload);
  });

  it('refuses an expired token, but decodes it when expiry is not checked', () => {
    const { text } = testNetwork().token({ exp: Math.floor(Date.now() / 1000) - 1 });
    assert.equal(
      codeOf(() => decodeToken(text)),
      'TOKEN_EXPIRED',
    );
    assert.ok(decodeToken(text, null).payload.id);
  });

  it('refuses a tampered payload, and a secret that is not the named key', () => {
    const net = testNetwork();
    const { text, decoded } = net.token();
    const [pre, , sig, secret] = text.split('.');
    const forged = Buffer.from(JSON.stringify({ ...decoded.payload, uses: 1000 })).toString('base64url');
    assert.equal(
      codeOf(() => decodeToken(`${pre}.${forged}.${sig}.${secret}`)),
      'TOKEN_TAMPERED',
    );
    const otherSecret = net.token().text.split('.')[3];
    assert.equal(
      codeOf(() => decodeToken(`${pre}.${text.split('.')[1]}.${sig}.${otherSecret}`)),
      'TOKEN_TAMPERED',
    );
  });

  it('refuses a token re-signed by another key that claims the same network', () => {
    const real = testNetwork();
    const other = generateSigner().signer;
    const { decoded } = real.token();
    // The attacker swaps in its own admin key: the network id no longer matches it.
    const { seed, key } = newTokenKey();
    const payload = { ...decoded.payload, adm: b64u(other.publicKey), tk: b64u(key.publicKey) };
    const text = encodeToken(payload, other, seed);
    assert.equal(
      codeOf(() => decodeToken(text)),
      'WRONG_NETWORK',
    );
    // And a real certificate never opens under another network's admin key.
    assert.equal(
      codeOf(() => openTokenCert(decoded.cert, other.publicKey)),
      'TOKEN_TAMPERED',
    );
  });

  it('refuses old plx1 tokens with a hint, and truncated, garbage and oversized input', () => {
    const { text } = testNetwork().token();
    assert.equal(
      codeOf(() => decodeToken('plx1.eyJhIjoxfQ.c2ln')),
      'TOKEN_OUTDATED',
    );
    assert.equal(
      codeOf(() => decodeToken(text.slice(0, -10))),
      'TOKEN_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeToken(text.split('.').slice(0, 3).join('.'))),
      'TOKEN_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeToken('hello')),
      'TOKEN_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeToken('plx2.!!!.???.x')),
      'TOKEN_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeToken(`plx2.${'a'.repeat(20000)}.b.c`)),
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
