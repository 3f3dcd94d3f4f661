/**
 * Release tarballs for tests, built once per test run into a temporary folder (scripts/release
 * takes ~30 s): a signed release, a second one with another version string from the same tree,
 * and variants repacked from it (an agent that exits at start, another CPU), each with its own
 * SHA256SUMS signed by the same test release key. Everything is removed with `cleanup()`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..', '..');
const PLEXUS = join(REPO, 'bin', 'plexus');

/** One release as a test uses it: its folder holds the tarball, SHA256SUMS and SHA256SUMS.sig. */
export interface TestRelease {
  version: string;
  dir: string;
  tarball: string;
}

/** Runs scripts/release for `version`, signed with `key`, into `out`. */
export function buildRelease(version: string, key: string, out: string): TestRelease {
  execFileSync(join(REPO, 'scripts', 'release'), ['--version', version, '--sign', key, '--out', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 600_000,
  });
  return { version, dir: out, tarball: join(out, `plexus-${version}-linux-${process.arch}.tar.gz`) };
}

/**
 * Repacks `from` as `version`, changed by `edit(folder)` (the unpacked release), and signs its
 * new SHA256SUMS with `key`; `arch` overrides the arch its tarball name and RELEASE state.
 */
export function repack(
  from: TestRelease,
  version: string,
  key: string,
  out: string,
  edit: (root: string) => void,
  arch = process.arch,
): TestRelease {
  const work = mkdtempSync(join(tmpdir(), 'plexus-repack-'));
  try {
    execFileSync('tar', ['xzf', from.tarball, '-C', work]);
    const root = join(work, `plexus-${version}`);
    execFileSync('mv', [join(work, `plexus-${from.version}`), root]);
    const manifest = JSON.parse(readFileSync(join(root, 'RELEASE'), 'utf8'));
    writeFileSync(join(root, 'RELEASE'), `${JSON.stringify({ ...manifest, version, arch })}\n`);
    edit(root);
    mkdirSync(out, { recursive: true });
    const name = `plexus-${version}-linux-${arch}.tar.gz`;
    execFileSync('sh', ['-c', `tar -C "${work}" -cf - "plexus-${version}" | gzip -n > "${join(out, name)}"`]);
    execFileSync('sh', ['-c', `cd "${out}" && sha256sum "${name}" > SHA256SUMS`]);
    execFileSync(PLEXUS, ['release', 'sign', '--release-key', key, join(out, 'SHA256SUMS')], {
      stdio: 'pipe',
    });
    return { version, dir: out, tarball: join(out, name) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The releases most install tests need, and the key that signed them. */
export interface TestReleases {
  root: string;
  key: string;
  a: TestRelease;
  b: TestRelease;
  /** A signed release whose agent exits at start. */
  broken: TestRelease;
  cleanup(): void;
}

/** Builds A (9.0.0) and B (9.0.1) from this tree and a broken 9.0.2 repacked from B. */
export function buildTestReleases(): TestReleases {
  const root = mkdtempSync(join(tmpdir(), 'plexus-releases-'));
  const key = join(root, 'release.key');
  execFileSync(PLEXUS, ['release', 'keygen', key], { stdio: 'pipe' });
  const a = buildRelease('9.0.0', key, join(root, 'a'));
  const b = buildRelease('9.0.1', key, join(root, 'b'));
  const broken = repack(b, '9.0.2', key, join(root, 'broken'), (r) =>
    writeFileSync(
      join(r, 'dist', 'agent.mjs'),
      'console.error("this build exits at start"); process.exit(3);\n',
    ),
  );
  return { root, key, a, b, broken, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
