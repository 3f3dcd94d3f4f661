/**
 * The release tarball (scripts/release, issue 15): it runs with no Node on the machine, two
 * builds of one tree are the same bytes, and every bad release is refused with a one-line error
 * before anything is switched: a wrong sha256, a bad signature, another CPU, a truncated
 * download, a disk that fills while unpacking.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installLayout, proofBeside, unpackRelease, verifyRelease } from '../../src/install/index.ts';
import { buildRelease, repack, type TestRelease } from '../helpers/releases.ts';

const root = mkdtempSync(join(tmpdir(), 'plexus-release-it-'));
const key = join(root, 'release.key');
let a: TestRelease;
const unpacked = join(root, 'unpacked');

before(
  () => {
    execFileSync(join(import.meta.dirname, '..', '..', 'bin', 'plexus'), ['release', 'keygen', key], {
      stdio: 'pipe',
    });
    const t0 = Date.now();
    a = buildRelease('9.1.0', key, join(root, 'a'));
    console.log(
      `# scripts/release: ${((Date.now() - t0) / 1000).toFixed(0)} s, tarball ${(statSync(a.tarball).size / 1e6).toFixed(1)} MB`,
    );
    mkdirSync(unpacked);
    execFileSync('tar', ['xzf', a.tarball, '-C', unpacked]);
  },
  { timeout: 1_200_000 },
);
after(() => {
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  rmSync(root, { recursive: true, force: true });
});
const mounts: string[] = [];

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    const e = err as { code?: string; message: string };
    assert.doesNotMatch(e.message, /\n/, 'errors are one line');
    return e.code;
  }
};
const trusted = () => {
  const etc = join(root, 'etc');
  mkdirSync(etc, { recursive: true });
  copyFileSync(join(unpacked, 'plexus-9.1.0', 'release.pub'), join(etc, 'release.pub'));
  return join(etc, 'release.pub');
};

describe('the release tarball', () => {
  it('carries its runtime, bundle, addons, man page and completions, and runs with no Node on the machine', () => {
    const r = join(unpacked, 'plexus-9.1.0');
    for (const f of [
      'install.sh',
      'RELEASE',
      'dist/agent.mjs',
      'dist/BUILD',
      // The dashboard's assets, served by `plexus ui` (docs/ui.md).
      'dist/ui/index.html',
      'dist/ui/app.js',
      'dist/ui/app.css',
      'share/man/man1/plexus.1',
      'share/completions/plexus.bash',
      'share/completions/plexus.zsh',
      'share/completions/plexus.fish',
      'node_modules/node-pty/build/Release/pty.node',
      `node_modules/better-sqlite3/prebuilds/linux-${process.arch}.node`,
      'node_modules/plexus-malloc-trim/build/Release/malloc_trim.node',
      'native/logstamp/build/plexus-logstamp',
      'packaging/supervisor/plexus-supervise',
    ])
      assert.ok(existsSync(join(r, f)), `${f} is in the tarball`);
    for (const f of ['native/logstamp/build/plexus-logstamp', 'packaging/supervisor/plexus-supervise'])
      assert.ok(statSync(join(r, f)).mode & 0o111, `${f} is executable`);
    assert.ok(!existsSync(join(r, 'node_modules', 'esbuild')), 'no dev dependencies');
    // The system's Node hidden too (bound over with /dev/null in a mount namespace of its own).
    const hide = existsSync('/usr/bin/node') ? 'mount --bind /dev/null /usr/bin/node; ' : '';
    const out = execFileSync(
      'unshare',
      ['-m', 'sh', '-c', `${hide}env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ${r}/bin/plexus --version`],
      {
        encoding: 'utf8',
      },
    );
    assert.match(
      out,
      new RegExp(`^plexus 9\\.1\\.0 \\(node v\\d+\\.\\d+\\.\\d+, ${r}/\\.tools/node-v[^/]+/bin/node\\)`),
    );
    console.log(`env -i plexus --version: ${out.trim()}`);
  });

  it('is reproducible: a second build of the same tree has the same sha256', { timeout: 1_200_000 }, () => {
    const b = buildRelease('9.1.0', key, join(root, 'again'));
    const sum = (t: TestRelease) =>
      execFileSync('sha256sum', [t.tarball], { encoding: 'utf8' }).split(' ')[0];
    assert.equal(sum(b), sum(a));
  });

  it('a signed release verifies', async () => {
    assert.equal(await codeOf(verifyRelease(a.tarball, proofBeside(a.tarball), trusted())), 'accepted');
  });

  it('refuses a wrong sha256, a bad signature, an untrusted host', async () => {
    assert.equal(
      await codeOf(verifyRelease(a.tarball, proofBeside(a.tarball, 'f'.repeat(64)), trusted())),
      'CHECKSUM_MISMATCH',
    );
    const other = join(root, 'other.key');
    execFileSync(join(import.meta.dirname, '..', '..', 'bin', 'plexus'), ['release', 'keygen', other], {
      stdio: 'pipe',
    });
    const forged = repack(a, '9.1.1', other, join(root, 'forged'), () => {});
    assert.equal(
      await codeOf(verifyRelease(forged.tarball, proofBeside(forged.tarball), trusted())),
      'BAD_SIGNATURE',
    );
    assert.equal(
      await codeOf(verifyRelease(a.tarball, proofBeside(a.tarball), join(root, 'none.pub'))),
      'UNTRUSTED_RELEASE_KEY',
    );
  });

  it('refuses a release for another CPU, even signed', async () => {
    const arm = repack(
      a,
      '9.1.2',
      key,
      join(root, 'arm'),
      () => {},
      process.arch === 'arm64' ? 'x64' : 'arm64',
    );
    assert.equal(await codeOf(verifyRelease(arm.tarball, proofBeside(arm.tarball), trusted())), 'WRONG_ARCH');
  });

  it('refuses a truncated download', async () => {
    const dir = join(root, 'truncated');
    mkdirSync(dir);
    for (const f of readdirSync(a.dir)) copyFileSync(join(a.dir, f), join(dir, f));
    const t = join(dir, `plexus-9.1.0-linux-${process.arch}.tar.gz`);
    truncateSync(t, Math.floor(statSync(t).size / 2));
    assert.equal(await codeOf(verifyRelease(t, proofBeside(t), trusted())), 'CHECKSUM_MISMATCH');
  });

  it('a disk that fills while unpacking: NO_SPACE, nothing left behind', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('mounting a small file system needs root');
    const fs = join(root, 'small');
    mkdirSync(fs);
    // A loop-mounted ext4 of 40 MB; a tmpfs of the same size where loop devices are not allowed.
    const img = join(root, 'small.img');
    execFileSync('truncate', ['-s', '40M', img]);
    const loop =
      spawnSync('mkfs.ext4', ['-q', '-F', img]).status === 0 &&
      spawnSync('mount', ['-o', 'loop', img, fs]).status === 0;
    if (!loop) {
      console.log('# no loop device here: a 40 MB tmpfs stands in for the loop-mounted fs');
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', fs]);
    }
    mounts.push(fs);
    const layout = installLayout({
      prefix: join(fs, 'opt'),
      etc: join(root, 'etc'),
      data: join(root, 'data'),
    });
    const { manifest, unpackedBytes } = await verifyRelease(a.tarball, proofBeside(a.tarball), trusted());
    // Refused up front when the room is plainly missing…
    assert.equal(
      await codeOf(unpackRelease(a.tarball, layout.releases, manifest, unpackedBytes)),
      'NO_SPACE',
    );
    // …and when the disk fills during the unpack (the size check told it is smaller than it is).
    assert.equal(await codeOf(unpackRelease(a.tarball, layout.releases, manifest, 1)), 'NO_SPACE');
    assert.deepEqual(readdirSync(layout.releases), [], 'no half-unpacked release is left');
  });
});
