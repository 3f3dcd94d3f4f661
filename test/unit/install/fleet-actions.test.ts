/**
 * `node.upgrade` (src/install/fleet-actions.ts) refuses what a member or a stolen operator key
 * could send it: a release not signed by this node's release key (before a byte is stored), an
 * upload larger than announced, a truncated one, a name that is not a release's.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ActionContext } from '../../../src/core/actions.ts';
import { generateSigner } from '../../../src/crypto/ed25519.ts';
import { fleetUpgradeActions } from '../../../src/install/fleet-actions.ts';
import { releasePublicKey, signSums } from '../../../src/install/release-signature.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-fleet-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const release = generateSigner().signer;
writeFileSync(join(dir, 'release.pub'), JSON.stringify(releasePublicKey(release)));
const launched: string[] = [];
const [upgrade] = fleetUpgradeActions(
  {
    dir: join(dir, 'upgrades'),
    releaseKey: join(dir, 'release.pub'),
    version: '1.0.0',
    plexus: '/nonexistent',
  },
  (_p, file) => launched.push(file),
);
const file = 'plexus-1.0.1-linux-x64.tar.gz';
const sums = `${'0'.repeat(64)}  ${file}\n`;
const ctx = (frames: unknown[]): ActionContext => ({
  caller: { kind: 'operator', kid: 'k', role: 'admin' },
  signal: new AbortController().signal,
  emit: async () => {},
  input: (async function* () {
    yield* frames;
  })(),
});
const codeOf = async (args: Record<string, unknown>, frames: unknown[] = []) => {
  try {
    await upgrade.handler(upgrade.args.parse(args), ctx(frames));
    return 'accepted';
  } catch (err) {
    return (err as { code?: string; name?: string }).code ?? (err as Error).name;
  }
};
const chunk = (n: number) => ({ chunk: Buffer.alloc(n).toString('base64') });

describe('node.upgrade refuses', () => {
  it('a release signed by another key, before storing anything', async () => {
    const forged = JSON.stringify(signSums(Buffer.from(sums), generateSigner().signer));
    assert.equal(
      await codeOf({ file, sums, sig: forged, total: 10, offset: 0, bytes: 10 }, [chunk(10), { end: true }]),
      'BAD_SIGNATURE',
    );
    assert.equal(existsSync(join(dir, 'upgrades')), false);
  });

  it('an upload larger than announced, or truncated; nothing is left behind or launched', async () => {
    const sig = JSON.stringify(signSums(Buffer.from(sums), release));
    assert.equal(
      await codeOf({ file, sums, sig, total: 10, offset: 0, bytes: 10 }, [chunk(8), chunk(8), { end: true }]),
      'RELEASE_TOO_LARGE',
    );
    assert.equal(
      await codeOf({ file, sums, sig, total: 10, offset: 0, bytes: 10 }, [chunk(4), { end: true }]),
      'DOWNLOAD_FAILED',
    );
    // Whole but not what SHA256SUMS lists.
    assert.equal(
      await codeOf({ file, sums, sig, total: 10, offset: 0, bytes: 10 }, [chunk(10), { end: true }]),
      'CHECKSUM_MISMATCH',
    );
    assert.deepEqual(
      readdirSync(join(dir, 'upgrades')).filter((f) => f.endsWith('.gz') || f.endsWith('.partial')),
      [],
    );
    assert.deepEqual(launched, []);
  });

  it('a piece out of order, or past the total announced', async () => {
    const sig = JSON.stringify(signSums(Buffer.from(sums), release));
    assert.equal(
      await codeOf({ file, sums, sig, total: 20, offset: 10, bytes: 10 }, [chunk(10), { end: true }]),
      'DOWNLOAD_FAILED',
    );
    assert.equal(
      await codeOf({ file, sums, sig, total: 10, offset: 5, bytes: 10 }, [chunk(10), { end: true }]),
      'RELEASE_TOO_LARGE',
    );
  });

  it('a file name that is not a release tarball (no path can be smuggled in)', () => {
    for (const bad of ['../../etc/passwd', 'plexus-1.0.1-linux-x64.tar.gz/../x', 'evil.sh'])
      assert.equal(
        upgrade.args.safeParse({ file: bad, sums, sig: 'x', upload: { bytes: 1 } }).success,
        false,
      );
  });
});
