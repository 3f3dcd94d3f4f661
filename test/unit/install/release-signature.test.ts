/** Release signatures (src/install/release-signature.ts): what verifies, and every forgery refused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateSigner } from '../../../src/crypto/ed25519.ts';
import {
  parseReleasePublicKey,
  releasePublicKey,
  signSums,
  sumFor,
  verifySums,
} from '../../../src/install/release-signature.ts';

const sums = Buffer.from(`${'a'.repeat(64)}  plexus-1.0.0-linux-x64.tar.gz\n`);
const release = generateSigner().signer;
const trusted = parseReleasePublicKey(JSON.stringify(releasePublicKey(release)), 'release.pub');
const sigOf = (s: Buffer, signer = release) => JSON.stringify(signSums(s, signer));
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return 'accepted';
};

describe('release signatures', () => {
  it('a signature by the trusted key verifies, and SHA256SUMS names the tarball', () => {
    assert.equal(
      code(() => verifySums(sums, sigOf(sums), trusted)),
      'accepted',
    );
    assert.equal(sumFor(sums, 'plexus-1.0.0-linux-x64.tar.gz'), 'a'.repeat(64));
    assert.equal(sumFor(sums, 'plexus-2.0.0-linux-x64.tar.gz'), undefined);
  });

  it('refuses a changed SHA256SUMS, another key, a garbled or foreign signature', () => {
    const changed = Buffer.from(sums.toString().replace('a', 'b'));
    assert.equal(
      code(() => verifySums(changed, sigOf(sums), trusted)),
      'BAD_SIGNATURE',
    );
    const other = generateSigner().signer;
    assert.equal(
      code(() => verifySums(sums, sigOf(sums, other), trusted)),
      'BAD_SIGNATURE',
    );
    // The other key's signature relabelled with the trusted key's id still fails.
    const relabelled = { ...signSums(sums, other), kid: release.kid };
    assert.equal(
      code(() => verifySums(sums, JSON.stringify(relabelled), trusted)),
      'BAD_SIGNATURE',
    );
    assert.equal(
      code(() => verifySums(sums, 'not json', trusted)),
      'BAD_SIGNATURE',
    );
    assert.equal(
      code(() => verifySums(sums, 'x'.repeat(5000), trusted)),
      'BAD_SIGNATURE',
    );
    // A signature over the same bytes under another domain (a signed command) is no release signature.
    const cross = {
      type: 'plexus-release-signature',
      kid: release.kid,
      sig: release.sign(sums).toString('base64url'),
    };
    assert.equal(
      code(() => verifySums(sums, JSON.stringify(cross), trusted)),
      'BAD_SIGNATURE',
    );
  });

  it('refuses a release.pub that is not one', () => {
    assert.equal(
      code(() => parseReleasePublicKey('{}', 'x')),
      'UNTRUSTED_RELEASE_KEY',
    );
    const pub = releasePublicKey(release);
    assert.equal(
      code(() => parseReleasePublicKey(JSON.stringify({ ...pub, kid: 'AAAAAAAAAAAAAAAA' }), 'x')),
      'UNTRUSTED_RELEASE_KEY',
    );
  });
});
