import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { extractBundle } from '../../../src/workloads/extract.ts';
import { makeTarGz, makeZip, type TestEntry } from '../../helpers/archives.ts';

const root = mkdtempSync(join(tmpdir(), 'plexus-extract-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** Writes the archive, extracts it into a fresh dir, and returns the dir (or throws). */
async function extract(
  kind: 'zip' | 'tgz',
  entries: TestEntry[],
  limits?: { maxEntries?: number; maxBytes?: number },
) {
  const dir = join(root, `case-${++n}`);
  mkdirSync(dir);
  const file = join(root, `bundle-${n}`);
  writeFileSync(file, kind === 'zip' ? makeZip(entries) : await makeTarGz(entries));
  const dest = join(dir, 'release');
  mkdirSync(dest);
  await extractBundle(file, dest, limits);
  return dest;
}

describe('bundle extraction', () => {
  for (const kind of ['zip', 'tgz'] as const) {
    describe(kind, () => {
      it('extracts files, folders, modes and links inside the release', async () => {
        const dest = await extract(kind, [
          { name: 'bin/', type: 'dir' },
          { name: 'bin/run.sh', data: '#!/bin/sh\necho hi\n', mode: 0o755 },
          { name: 'data/big.txt', data: 'x'.repeat(10_000) },
          { name: 'link-to-run', type: 'symlink', data: 'bin/run.sh' },
        ]);
        assert.equal(readFileSync(join(dest, 'bin/run.sh'), 'utf8'), '#!/bin/sh\necho hi\n');
        assert.equal(readFileSync(join(dest, 'data/big.txt'), 'utf8').length, 10_000);
        assert.equal(readlinkSync(join(dest, 'link-to-run')), 'bin/run.sh');
      });

      it('drops setuid and setgid bits', async () => {
        const dest = await extract(kind, [{ name: 'suid', data: '#!/bin/sh\n', mode: 0o6755 }]);
        assert.equal(statSync(join(dest, 'suid')).mode & 0o7000, 0);
        assert.equal(statSync(join(dest, 'suid')).mode & 0o100, 0o100, 'still executable');
      });

      it('uses a single top-level folder as the release root', async () => {
        const dest = await extract(kind, [
          { name: 'app-1.0/', type: 'dir' },
          { name: 'app-1.0/server.js', data: '1' },
        ]);
        assert.ok(existsSync(join(dest, 'server.js')));
      });

      it("refuses '..' entries (zip-slip) without writing outside", async () => {
        await assert.rejects(
          extract(kind, [
            { name: 'ok.txt', data: 'a' },
            { name: '../../escaped.txt', data: 'pwned' },
          ]),
          {
            code: 'ZIP_SLIP',
          },
        );
        assert.ok(!existsSync(join(root, 'escaped.txt')));
      });

      it('refuses absolute paths', async () => {
        await assert.rejects(extract(kind, [{ name: '/tmp/plexus-abs-test', data: 'x' }]), {
          code: 'ZIP_SLIP',
        });
        assert.ok(!existsSync('/tmp/plexus-abs-test'));
      });

      it('refuses a symlink that points outside the release', async () => {
        await assert.rejects(extract(kind, [{ name: 'etc', type: 'symlink', data: '../../../etc' }]), {
          code: 'LINK_ESCAPE',
        });
        await assert.rejects(extract(kind, [{ name: 'passwd', type: 'symlink', data: '/etc/passwd' }]), {
          code: 'LINK_ESCAPE',
        });
      });

      it('refuses a chain of inside-looking links that escapes', async () => {
        // d -> .. resolves to the release root's parent only through 'a/d'; each literal target looks inside.
        await assert.rejects(
          extract(kind, [
            { name: 'a/b/', type: 'dir' },
            { name: 'a/b/d', type: 'symlink', data: '../..' },
            { name: 'x', type: 'symlink', data: 'a/b/d/..' },
          ]),
          { code: 'LINK_ESCAPE' },
        );
      });

      it('refuses too many entries', async () => {
        const entries = Array.from({ length: 30 }, (_, i) => ({ name: `f${i}`, data: 'x' }));
        await assert.rejects(extract(kind, entries, { maxEntries: 20 }), { code: 'TOO_MANY_FILES' });
      });

      it('refuses an archive that expands past the byte limit (bomb)', async () => {
        await assert.rejects(
          extract(kind, [{ name: 'zeros', data: Buffer.alloc(200_000) }], { maxBytes: 100_000 }),
          {
            code: 'ARCHIVE_TOO_LARGE',
          },
        );
      });
    });
  }

  it('refuses a zip whose headers lie about the size', async () => {
    await assert.rejects(
      extract('zip', [{ name: 'zeros', data: Buffer.alloc(500_000), declaredSize: 10 }], {
        maxBytes: 100_000,
      }),
      (err: Error & { code?: string }) => ['ARCHIVE_TOO_LARGE', 'BAD_ARCHIVE'].includes(err.code ?? ''),
    );
  });

  it('refuses a tar.gz whose padding after the last entry inflates past the limit', async () => {
    const { gunzipSync, gzipSync } = await import('node:zlib');
    const tarBytes = gunzipSync(await makeTarGz([{ name: 'small.txt', data: 'x' }]));
    const file = join(root, 'padded.tgz');
    writeFileSync(file, gzipSync(Buffer.concat([tarBytes, Buffer.alloc(5_000_000)])));
    const dest = join(root, 'dest-padded');
    mkdirSync(dest);
    await assert.rejects(extractBundle(file, dest, { maxBytes: 100_000, maxEntries: 10 }), {
      code: 'ARCHIVE_TOO_LARGE',
    });
  });

  it('refuses something that is not an archive', async () => {
    const file = join(root, 'not-an-archive');
    writeFileSync(file, 'hello, I am text');
    const dest = join(root, 'dest-bad');
    mkdirSync(dest);
    await assert.rejects(extractBundle(file, dest), { code: 'BAD_ARCHIVE' });
  });

  it('refuses a truncated tar.gz', async () => {
    const good = await makeTarGz([{ name: 'a.txt', data: 'x'.repeat(100_000) }]);
    const file = join(root, 'truncated.tgz');
    writeFileSync(file, good.subarray(0, Math.floor(good.length / 2)));
    const dest = join(root, 'dest-trunc');
    mkdirSync(dest);
    await assert.rejects(extractBundle(file, dest), { code: 'BAD_ARCHIVE' });
  });
});
