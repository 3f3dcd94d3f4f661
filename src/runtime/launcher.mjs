/**
 * Runs `plexus agent` from its bundle (bundle.mjs says why a bundle), found one of two ways:
 *
 * - A release install has a prebuilt `dist/agent.mjs` beside a `dist/BUILD` stamp (written by
 *   `scripts/build --out dist`): it runs as it is, with no look at the sources.
 * - A development checkout keys its bundle by the sources: every file under src/ (path, size,
 *   mtime), package.json, the lockfile, the patches to dependencies and the Node version. The bundle for the current key
 *   lives in the compile cache (`.tools/compile-cache/agent/agent-KEY.mjs`); when it is
 *   missing, a child process builds it. Editing any source thus rebuilds it on the next start.
 *
 * Without a bundle (`PLEXUS_NO_BUNDLE=1`, no esbuild in an install without dev dependencies, an
 * unwritable cache, a failed build) the caller runs the agent from the sources.
 *
 * Plain JavaScript, like src/cli/boot.mjs: it runs before any TypeScript is loaded.
 */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Where a release install keeps its prebuilt bundle, relative to the installation. */
export const RELEASE_DIR = 'dist';
/** The release bundle's file name. */
export const RELEASE_BUNDLE = 'agent.mjs';
/** The stamp beside it; its presence marks the bundle as a release build. */
export const RELEASE_STAMP = 'BUILD';
/** A build takes ~1 s; past this the agent runs from the sources rather than wait. */
const BUILD_TIMEOUT_MS = 60_000;

/** A key that changes with any source file, the dependencies, their patches and the Node version. */
function sourceKey(root) {
  const h = createHash('sha256').update(process.version);
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|mts|mjs|cjs|js|json|patch)$/.test(e.name)) {
        const st = statSync(p);
        h.update(`${relative(root, p)}\0${st.size}\0${st.mtimeMs}\n`);
      }
    }
  };
  walk(join(root, 'src'));
  for (const f of ['package.json', 'package-lock.json', 'patches']) {
    try {
      const st = statSync(join(root, f));
      if (st.isDirectory()) walk(join(root, f));
      else h.update(`${f}\0${st.size}\0${st.mtimeMs}\n`);
    } catch {
      // A checkout without a lockfile or patches: the key just ignores it.
    }
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Where the development bundle for the sources under `root` lives in `cacheDir`, or undefined
 * when the agent must run from the sources.
 */
export function devBundlePath(root, cacheDir) {
  if (process.env.PLEXUS_NO_BUNDLE === '1' || !cacheDir) return undefined;
  const dir = join(cacheDir, 'agent');
  // Outside the repository, the external packages would not resolve from the bundle.
  const rel = relative(root, dir);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return undefined;
  return join(dir, `agent-${sourceKey(root)}.mjs`);
}

/**
 * Makes sure the development bundle exists, building it in a child process: esbuild's output
 * and its service's buffers would otherwise stay in the agent's heap (an agent that built its
 * own bundle idled at 128 instead of 107 MB). Returns the bundle's path or undefined.
 */
function ensureDevBundle(root, cacheDir) {
  const out = devBundlePath(root, cacheDir);
  if (!out || existsSync(out)) return out;
  const r = spawnSync(process.execPath, [join(import.meta.dirname, 'bundle.mjs'), root, out], {
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

/** The bundle to run: the release build when there is one, else the development one. */
function bundleFor(root, cacheDir) {
  if (process.env.PLEXUS_NO_BUNDLE === '1') return undefined;
  const release = join(root, RELEASE_DIR);
  // A stamp without its bundle (a half-copied release) falls back like a missing bundle does.
  if (existsSync(join(release, RELEASE_STAMP)) && existsSync(join(release, RELEASE_BUNDLE)))
    return join(release, RELEASE_BUNDLE);
  return ensureDevBundle(root, cacheDir);
}

/**
 * Runs the CLI (the `agent` verb) from the bundle. Returns false, having run nothing, when
 * there is no bundle to be had; the caller then loads the sources.
 */
export async function runBundledAgent(root, cacheDir) {
  let file;
  try {
    file = bundleFor(root, cacheDir);
  } catch (err) {
    if (process.env.PLEXUS_DEBUG === '1') process.stderr.write(`plexus: agent bundle not built: ${err}\n`);
    return false;
  }
  if (!file) return false;
  await import(pathToFileURL(file).href);
  return true;
}
