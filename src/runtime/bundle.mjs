/**
 * Builds the agent bundle: one esbuild file of the TypeScript sources that `plexus agent` runs
 * (launcher.mjs runs it), from src/cli/agent-main.ts: the agent verb without the CLI's other
 * verbs. `scripts/build` is this file's command line.
 *
 * Why a bundle: an idle agent's V8 heap is mostly the ~1300 modules it loads (module records,
 * their sources and bytecode, and 23 copies of uint8arrays, 11 of protons-runtime, each loaded
 * apart). As one minified file the same code made an idle agent ~20 MB smaller (a lone agent
 * after 40 s: 131 → 107 MB; 5-agent mesh idle 60 s: 121-124 → 104-108 MB, bench/join.ts),
 * issue 2's idle target being 100 MB. The sources stay the truth: the short CLI verbs run them
 * directly, and so does the agent when there is no bundle (see launcher.mjs).
 *
 * The bundle holds the dependencies as installed, with patches/ applied by npm: it changes no
 * dependency code itself. Native addons and the packages that load files next to themselves
 * stay outside it (EXTERNAL) and resolve from node_modules at run time, so a bundle must live
 * inside the installation.
 *
 *   scripts/build              the checkout's bundle, in the compile cache (scripts/bootstrap
 *                              runs it so that the first agents do not each build it)
 *   scripts/build --out DIR    a release build: DIR/agent.mjs and DIR/BUILD, the stamp that
 *                              tells the launcher to run it without hashing the sources
 *                              (launcher.mjs runs `dist/` of the installation)
 *   node bundle.mjs ROOT OUT   one bundle of ROOT's sources into OUT (the launcher's child)
 *
 * Plain JavaScript, like src/cli/boot.mjs: it runs before any TypeScript is loaded.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { devBundlePath, RELEASE_BUNDLE, RELEASE_STAMP } from './launcher.mjs';
import { buildUi, uiAssets } from './ui-bundle.mjs';

/**
 * Packages left to Node's resolution at run time: native addons (better-sqlite3, node-pty,
 * plexus-malloc-trim) and systeminformation, which reads files next to itself. xsalsa20 is no
 * longer among them: it was external only so that a fix patching its prototype at import hit
 * the same module @libp2p/pnet uses; patched on disk, it is bundled like any other package.
 * tar and yauzl are external too: only a deploy or an upgrade unpacks an archive, and it imports
 * them when it does (extract-tar.ts, extract-zip.ts, release-archive.ts); inside the bundle their
 * ~120 KB of source sat in every agent's memory, since V8 keeps a bundle's whole source.
 */
const EXTERNAL = ['better-sqlite3', 'node-pty', 'plexus-malloc-trim', 'systeminformation', 'tar', 'yauzl'];
/** Development bundles kept: the current one and the one before (an agent may be starting from it). */
const KEEP = 2;

/** Builds the bundle of `root`'s sources into `out`, written whole and then renamed. */
export async function build(root, out) {
  const esbuild = await import('esbuild');
  mkdirSync(dirname(out), { recursive: true });
  const result = await esbuild.build({
    // The agent verb alone (agent-main.ts): the other verbs' code never runs in an agent.
    entryPoints: [join(root, 'src', 'cli', 'agent-main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    external: EXTERNAL,
    // Not keepNames: its __name() call for each of ~4400 functions and classes cost an idle
    // agent 2.4 MB (98.2 → 95.8 MB mean, 5-agent mesh idle 60 s, bench/join.ts). Without it, the
    // names stay as written, except that one esbuild renames for a clash between modules carries
    // a digit (`fromRaw2`) in stack traces and `constructor.name`; error names are set explicitly.
    keepNames: false,
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
    // Whitespace and comments out, identifiers kept (stack traces stay readable; minified ones
    // would save ~1.5 MB more). This also keeps the file ASCII: one non-ASCII character in a
    // comment makes V8 hold the whole source as UTF-16, twice its size (a 5.4 MB bundle cost
    // 10.8 MB).
    minifyWhitespace: true,
    minifySyntax: true,
    charset: 'ascii',
    // CommonJS dependencies call require(); an ES module has none of its own.
    banner: {
      js: "import { createRequire as __plexusRequire } from 'node:module';\nconst require = __plexusRequire(import.meta.url);",
    },
  });
  // Agents starting at the same time never read half a file.
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, result.outputFiles[0].contents);
  renameSync(tmp, out);
}

/** Removes all but the newest KEEP development bundles in `dir`. */
function pruneDevBundles(dir) {
  const old = readdirSync(dir)
    .filter((f) => f.startsWith('agent-') && f.endsWith('.mjs'))
    .map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t)
    .slice(KEEP);
  for (const { f } of old) rmSync(join(dir, f), { force: true });
}

/** The commit a checkout is at, or null outside git. */
function commitOf(root) {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch {
    return null;
  }
}

/**
 * A release build into `dir` (inside `root`, whose node_modules the external packages resolve
 * from): the bundle, then the BUILD stamp, which names what was built so that an installer can
 * check it, and whose presence makes the launcher run the bundle as it is.
 */
export async function buildRelease(root, dir) {
  const rel = relative(root, dir);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new Error(
      `--out ${dir}: must be a folder inside ${root} (the bundle's external packages resolve from there)`,
    );
  }
  // A stamp left from an earlier build must not vouch for a half-written bundle.
  rmSync(join(dir, RELEASE_STAMP), { force: true });
  const out = join(dir, RELEASE_BUNDLE);
  await build(root, out);
  // The dashboard's static assets ship beside the bundle (ui-bundle.mjs); `plexus ui` serves them.
  await buildUi(root, join(dir, 'ui'));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const stamp = {
    name: pkg.name,
    version: pkg.version,
    // scripts/release builds from a copy of the sources outside git and sets both, so that two
    // builds of one commit are the same bytes.
    commit: process.env.PLEXUS_COMMIT ?? commitOf(root),
    builtWith: process.version,
    bundle: RELEASE_BUNDLE,
    sha256: createHash('sha256').update(readFileSync(out)).digest('hex'),
    builtAt: new Date(
      process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) * 1000 : Date.now(),
    ).toISOString(),
  };
  writeFileSync(join(dir, RELEASE_STAMP), `${JSON.stringify(stamp, null, 2)}\n`);
  return stamp;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: true });
  const repo = join(import.meta.dirname, '..', '..');
  if (values.out) {
    const stamp = await buildRelease(repo, resolve(values.out));
    process.stdout.write(
      `built ${join(resolve(values.out), RELEASE_BUNDLE)} (${stamp.sha256.slice(0, 16)})\n`,
    );
  } else if (positionals.length === 2) {
    const [root, out] = positionals;
    await build(root, out);
    pruneDevBundles(dirname(out));
  } else {
    // Keyed by the sources: one that exists is up to date.
    const out = devBundlePath(
      repo,
      process.env.PLEXUS_COMPILE_CACHE ?? join(repo, '.tools', 'compile-cache'),
    );
    if (out && !existsSync(out)) {
      await build(repo, out);
      pruneDevBundles(dirname(out));
    }
    // The dashboard's assets, keyed by their sources (a no-op when up to date).
    await uiAssets(repo);
  }
}
