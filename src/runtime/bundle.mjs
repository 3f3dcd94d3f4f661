/**
 * The agent runs from one bundled file built from the TypeScript sources (esbuild), kept in
 * the compile cache and rebuilt whenever a source file or the dependencies change.
 *
 * Why: an idle agent's V8 heap is mostly the ~1300 modules it loads (module records, their
 * sources and bytecode, and 23 copies of uint8arrays, 11 of protons-runtime, each loaded
 * apart). As one minified file the same code made an idle agent ~20 MB smaller (a lone agent
 * after 40 s: 131 → 107 MB; 5-agent mesh idle 60 s: 121-124 → 104-108 MB), issue 2's idle
 * target being 100 MB. The bundle also changes a little of its dependencies' code (REWRITES
 * below), for the same reason. The sources stay the truth: the short CLI verbs still run them
 * directly, and `PLEXUS_NO_BUNDLE=1` (or a missing esbuild, an unwritable cache, a failed
 * build) runs the agent from them too.
 *
 * Native addons and the packages that load files next to themselves stay outside the bundle,
 * and so does xsalsa20: src/mesh/xsalsa20-fix.ts patches the copy that @libp2p/pnet uses, so
 * both must resolve to the same module in node_modules. The bundle lives under the
 * repository (`.tools/compile-cache/agent/`) so that those imports resolve as they would from
 * the sources.
 *
 * Plain JavaScript, like boot.mjs: it runs before any TypeScript is loaded.
 */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Packages left to Node's resolution at run time (see the file comment). */
const EXTERNAL = ['better-sqlite3', 'node-pty', 'plexus-malloc-trim', 'systeminformation', 'xsalsa20'];
/**
 * Code of dependencies that the bundle changes, each for an idle agent's memory (issue 2:
 * 100 MB in a 5-agent mesh). Neither changes what the code is for.
 *
 * - libp2p's peer store sorts addresses and protocol names with `localeCompare`, only to put
 *   them in a canonical order. The first call loads ICU's collation tables and code: ~2.6 MB
 *   of every agent's RSS (5-agent mesh idle 60 s: 104.4 → 101.8 MB mean). Code-unit order is
 *   as canonical, and both sides of every comparison use it.
 * - prom-client's index requires its Pushgateway, which the agent never constructs, and that
 *   requires node:https and so TLS (~0.4 MB of an agent, 2.9 MB of a bare process). Its
 *   `require('https')` becomes an object that loads node:https on first use.
 */
const REWRITES = [
  {
    filter: /[\\/]node_modules[\\/]@libp2p[\\/](peer-store|peer-record)[\\/]dist[\\/].*\.js$/,
    // `X.localeCompare(Y)` with X a name, a property chain or a call: every form these
    // packages use. Another form is left in place and fails the build (see `gone`).
    rewrite: (src) =>
      src.includes('localeCompare(')
        ? `${src.replace(/([\w$.]+(?:\(\))?)\.localeCompare\(/g, '__plexusCompareCodeUnits($1, ')}
function __plexusCompareCodeUnits(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
`
        : src,
    gone: /\.localeCompare\(/,
  },
  {
    filter: /[\\/]node_modules[\\/]prom-client[\\/]lib[\\/]pushgateway\.js$/,
    // It only calls `https.request`.
    rewrite: (src) =>
      `${src.replace("require('https')", '__plexusLazyHttps()')}
function __plexusLazyHttps() {
  return { request: (...args) => process.getBuiltinModule('node:https').request(...args) };
}
`,
    gone: /require\(['"](node:)?https['"]\)/,
  },
];

/**
 * The bundle's text of the dependency file at `path` (REWRITES). Throws when a rewrite no
 * longer finds what it replaces, as after an update of the package.
 */
export function rewriteDependency(path, src) {
  const r = REWRITES.find((x) => x.filter.test(path));
  if (!r) return src;
  const contents = r.rewrite(src);
  if (r.gone.test(contents))
    throw new Error(`${path}: a form the bundle's rewrite does not know (${r.gone})`);
  return contents;
}

/** Bundles kept: the current one and the one before (an agent may still be starting from it). */
const KEEP = 2;
/** A build takes ~1 s; past this the agent runs from the sources rather than wait. */
const BUILD_TIMEOUT_MS = 60_000;

/** A key that changes with any source file, the installed dependencies and the Node version. */
function sourceKey(root) {
  const h = createHash('sha256').update(process.version);
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|mts|mjs|cjs|js|json)$/.test(e.name)) {
        const st = statSync(p);
        h.update(`${relative(root, p)}\0${st.size}\0${st.mtimeMs}\n`);
      }
    }
  };
  walk(join(root, 'src'));
  for (const f of ['package.json', 'package-lock.json']) {
    try {
      const st = statSync(join(root, f));
      h.update(`${f}\0${st.size}\0${st.mtimeMs}\n`);
    } catch {
      // A checkout without a lockfile: the key just ignores it.
    }
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Where the bundled agent for the sources under `root` lives in `cacheDir`, or undefined when
 * the agent must run from the sources.
 */
function bundlePath(root, cacheDir) {
  if (process.env.PLEXUS_NO_BUNDLE === '1' || !cacheDir) return undefined;
  const dir = join(cacheDir, 'agent');
  // Outside the repository, the external packages would not resolve from the bundle.
  const rel = relative(root, dir);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return undefined;
  return join(dir, `agent-${sourceKey(root)}.mjs`);
}

/** Builds the bundle into `out` (in the process that runs `node agent-bundle.mjs`). */
async function build(root, out) {
  const esbuild = await import('esbuild');
  const dir = dirname(out);
  mkdirSync(dir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    external: EXTERNAL,
    // Not keepNames: its __name() call for each of ~4400 functions and classes cost an idle
    // agent 2.4 MB (98.2 → 95.8 MB mean, 5-agent mesh idle 60 s). Without it, the names stay as
    // written, except that one esbuild renames for a clash between modules carries a digit
    // (`fromRaw2`) in stack traces and `constructor.name`; error names are set explicitly.
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
    plugins: [rewritePlugin()],
    // CommonJS dependencies call require(); an ES module has none of its own.
    banner: {
      js: "import { createRequire as __plexusRequire } from 'node:module';\nconst require = __plexusRequire(import.meta.url);",
    },
  });
  // Written whole, then renamed: agents starting at the same time never read half a file.
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, result.outputFiles[0].contents);
  renameSync(tmp, out);
  const old = readdirSync(dir)
    .filter((f) => f.startsWith('agent-') && f.endsWith('.mjs'))
    .map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t)
    .slice(KEEP);
  for (const { f } of old) rmSync(join(dir, f), { force: true });
}

/** The esbuild plugin that applies REWRITES; a rewrite that no longer applies fails the build. */
function rewritePlugin() {
  return {
    name: 'plexus-rewrites',
    setup(b) {
      for (const { filter } of REWRITES) {
        b.onLoad({ filter }, async (args) => {
          try {
            return {
              contents: rewriteDependency(args.path, await readFile(args.path, 'utf8')),
              loader: 'js',
            };
          } catch (err) {
            return { errors: [{ text: String(err.message) }] };
          }
        });
      }
    },
  };
}

/**
 * Makes sure the bundle exists, building it in a child process: esbuild's output and its
 * service's buffers would otherwise stay in the agent's heap (an agent that built its own
 * bundle idled at 128 instead of 107 MB). Returns the bundle's path or undefined.
 */
function ensureBundle(root, cacheDir) {
  const out = bundlePath(root, cacheDir);
  if (!out || existsSync(out)) return out;
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), root, out], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: BUILD_TIMEOUT_MS,
  });
  if (r.status !== 0 || !existsSync(out)) {
    if (process.env.PLEXUS_DEBUG === '1') {
      process.stderr.write(`plexus: agent bundle not built: ${r.error ?? r.stderr}\n`);
    }
    return undefined;
  }
  return out;
}

/**
 * Runs the CLI (the `agent` verb) from the bundle. Returns false, having run nothing, when
 * the bundle cannot be had (no esbuild in an install without dev dependencies, an unwritable
 * cache, a failed build); the caller then loads the sources.
 */
export async function runBundledAgent(root, cacheDir) {
  let file;
  try {
    file = ensureBundle(root, cacheDir);
  } catch (err) {
    if (process.env.PLEXUS_DEBUG === '1') process.stderr.write(`plexus: agent bundle not built: ${err}\n`);
    return false;
  }
  if (!file) return false;
  await import(pathToFileURL(file).href);
  return true;
}

// `node src/runtime/agent-bundle.mjs ROOT OUT` builds one bundle (ensureBundle's child);
// `node src/runtime/agent-bundle.mjs` alone builds the repository's own, as scripts/bootstrap does
// so that the first agents of a test run or the demo do not each build it.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [root, out] = process.argv.slice(2);
  if (root && out) {
    await build(root, out);
  } else {
    const repo = join(import.meta.dirname, '..', '..');
    const path = bundlePath(repo, process.env.PLEXUS_COMPILE_CACHE ?? join(repo, '.tools', 'compile-cache'));
    if (path && !existsSync(path)) await build(repo, path);
  }
}
