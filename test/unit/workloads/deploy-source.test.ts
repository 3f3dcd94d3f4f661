/**
 * Staging a bundle that is larger than the pieces it moves in (STREAM_CHUNK_BYTES): bytes arrive
 * intact whatever the frame sizes, the checksum covers every byte, and a refusal or a size limit
 * in the middle of the stream stops the transfer and leaves nothing in tmp/.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { STREAM_CHUNK_BYTES } from '../../../src/workloads/constants.ts';
import { stageBundle } from '../../../src/workloads/deploy-source.ts';
import { appPaths, ensureAppDirs } from '../../../src/workloads/releases.ts';
import { makeTarGz, makeZip, sha256 } from '../../helpers/archives.ts';

const root = mkdtempSync(join(tmpdir(), 'plexus-stage-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** Upload frames of `size` bytes (deliberately not a divisor of the piece size); counts what was read. */
function frames(bundle: Buffer, size: number) {
  const seen = { frames: 0, total: Math.ceil(bundle.length / size) };
  const input = (async function* () {
    for (let i = 0; i < bundle.length; i += size) {
      seen.frames++;
      yield { chunk: bundle.subarray(i, i + size).toString('base64') };
    }
    yield { end: true };
  })();
  return { input, seen };
}

function freshApp() {
  const p = appPaths(root, `app-${++n}`);
  ensureAppDirs(p);
  return p;
}

// Incompressible, so the tar.gz spans several pieces.
const big = randomBytes(Math.floor(3.5 * STREAM_CHUNK_BYTES));
const small = Buffer.from('console.log("hi")\n');

describe('staging a bundle of several pieces', () => {
  for (const kind of ['tgz', 'zip'] as const) {
    it(`${kind}: files arrive intact and the checksum covers every byte`, async () => {
      const entries = [
        { name: 'assets/big.bin', data: big },
        { name: 'server.cjs', data: small },
      ];
      const bundle = kind === 'zip' ? makeZip(entries) : await makeTarGz(entries);
      assert.ok(bundle.length > 3 * STREAM_CHUNK_BYTES);
      const p = freshApp();
      const { input } = frames(bundle, 300_001);
      const staged = await stageBundle(p, { kind: 'upload', input, sha256: sha256(bundle) });
      try {
        assert.equal(staged.transfer.bytes, bundle.length);
        assert.equal(staged.transfer.sha256, sha256(bundle));
        assert.ok(readFileSync(join(staged.dir, 'assets/big.bin')).equals(big));
        assert.ok(readFileSync(join(staged.dir, 'server.cjs')).equals(small));
        assert.ok(!existsSync(join(staged.staging, 'bundle')), 'no bundle file left in the release');
      } finally {
        rmSync(staged.staging, { recursive: true, force: true });
      }
    });
  }

  it('a wrong checksum is refused after the last piece, and tmp/ is left empty', async () => {
    const bundle = await makeTarGz([{ name: 'assets/big.bin', data: big }]);
    const p = freshApp();
    const { input } = frames(bundle, 65_536);
    await assert.rejects(stageBundle(p, { kind: 'upload', input, sha256: 'a'.repeat(64) }), {
      code: 'CHECKSUM_MISMATCH',
    });
    assert.deepEqual(readdirSync(p.tmp), []);
  });

  it("an entry with '..' after several pieces stops the transfer and leaves tmp/ empty", async () => {
    const bundle = await makeTarGz([
      { name: 'assets/big.bin', data: big },
      { name: '../../escaped.txt', data: 'pwned' },
      { name: 'assets/more.bin', data: randomBytes(4 * STREAM_CHUNK_BYTES) },
    ]);
    const p = freshApp();
    const { input, seen } = frames(bundle, 65_536);
    await assert.rejects(stageBundle(p, { kind: 'upload', input }), { code: 'ZIP_SLIP' });
    assert.ok(seen.frames < seen.total, `read ${seen.frames} of ${seen.total} frames`);
    assert.deepEqual(readdirSync(p.tmp), []);
    assert.ok(!existsSync(join(root, 'escaped.txt')) && !existsSync(join(p.root, 'escaped.txt')));
  });

  it('a bundle over the size limit is refused mid-stream and leaves tmp/ empty', async () => {
    const bundle = await makeTarGz([{ name: 'assets/big.bin', data: big }]);
    const p = freshApp();
    const { input, seen } = frames(bundle, 65_536);
    await assert.rejects(
      stageBundle(p, { kind: 'upload', input }, { maxBundleBytes: 2 * STREAM_CHUNK_BYTES + 12_345 }),
      { code: 'BUNDLE_TOO_LARGE' },
    );
    assert.ok(seen.frames < seen.total);
    assert.deepEqual(readdirSync(p.tmp), []);
  });
});
