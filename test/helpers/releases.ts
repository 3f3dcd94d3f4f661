/**
 * Release tarballs for tests, built once per test run into a temporary folder (scripts/release
 * takes ~30 s): a signed release, a second one with another version string from the same tree,
 * and variants repacked from it (an agent that exits at start, another CPU), each with its own
 * SHA256SUMS signed by the same test release key.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
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
    // gzip -1: a test release only needs to be a valid tarball, and this is 3x faster than -6.
    execFileSync('sh', [
      '-c',
      `tar -C "${work}" -cf - "plexus-${version}" | gzip -1 -n > "${join(out, name)}"`,
    ]);
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
}

/** A key over what goes into a release: bin/, src/, packaging/, package.json, scripts/release, the stamper. */
function treeKey(): string {
  const h = createHash('sha256');
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
    else h.update(`${p}\0`).update(readFileSync(p));
  };
  for (const p of [
    'bin',
    'src',
    'packaging',
    'package.json',
    'scripts/release',
    'native/logstamp/logstamp.c',
  ])
    walk(join(REPO, p));
  return h.digest('hex').slice(0, 16);
}

/**
 * Builds A (9.0.0) and B (9.0.1) from this tree and a broken 9.0.2 repacked from B, once per
 * tree: cached in a temporary folder keyed by the sources, so that the install tests of one run
 * share them (a cache of other sources is removed first).
 */
export function buildTestReleases(): TestReleases {
  // Per checkout: another checkout's tests (a worktree beside this one) may be using theirs.
  const checkout = createHash('sha256').update(REPO).digest('hex').slice(0, 8);
  const root = join(tmpdir(), `plexus-test-releases-${checkout}-${treeKey()}`);
  const r = releasesIn(root);
  if (existsSync(join(root, 'done'))) return r;
  for (const d of readdirSync(tmpdir()).filter((d) => d.startsWith(`plexus-test-releases-${checkout}-`)))
    rmSync(join(tmpdir(), d), { recursive: true, force: true });
  mkdirSync(root);
  execFileSync(PLEXUS, ['release', 'keygen', r.key], { stdio: 'pipe' });
  buildRelease('9.0.0', r.key, r.a.dir);
  buildRelease('9.0.1', r.key, r.b.dir);
  repack(r.b, '9.0.2', r.key, r.broken.dir, (dir) =>
    writeFileSync(
      join(dir, 'dist', 'agent.mjs'),
      'console.error("this build exits at start"); process.exit(3);\n',
    ),
  );
  writeFileSync(join(root, 'done'), '');
  return r;
}

function releasesIn(root: string): TestReleases {
  const rel = (version: string, dir: string): TestRelease => ({
    version,
    dir: join(root, dir),
    tarball: join(root, dir, `plexus-${version}-linux-${process.arch}.tar.gz`),
  });
  return {
    root,
    key: join(root, 'release.key'),
    a: rel('9.0.0', 'a'),
    b: rel('9.0.1', 'b'),
    broken: rel('9.0.2', 'broken'),
  };
}
