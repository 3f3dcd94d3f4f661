/**
 * Builds the dashboard's static assets (issue 17, docs/ui.md): the browser sources under
 * src/ui/web/ (Preact, uPlot, xterm.js, d3-force) bundled by esbuild into one `app.js` and one
 * `app.css`, beside `index.html`. Nothing is loaded from a CDN: the page needs only these three
 * files, which `plexus ui` serves.
 *
 *   release: `scripts/release` (through bundle.mjs's buildRelease) writes them to `dist/ui/`
 *   checkout: `plexus ui` builds them on first use into `.tools/compile-cache/ui/KEY/`, keyed by
 *   the browser sources and the lockfile (uiAssets below)
 *
 * The agent never imports any of this: its bundle is built from src/cli/main.ts, which reaches
 * no browser code, so an agent's memory does not grow with the dashboard.
 *
 * Plain JavaScript, like bundle.mjs: it runs before any TypeScript is loaded.
 */

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** The browser sources, relative to the repository. */
const WEB = join('src', 'ui', 'web');
/** Where a release keeps the assets, relative to the installation. */
export const RELEASE_UI_DIR = join('dist', 'ui');
/** The files a complete build holds. */
export const UI_FILES = ['index.html', 'app.js', 'app.css'];

/** A key that changes with any browser source and the locked dependency versions. */
function uiKey(root) {
  const h = createHash('sha256');
  for (const f of readdirSync(join(root, WEB)).sort()) h.update(f).update(readFileSync(join(root, WEB, f)));
  try {
    h.update(readFileSync(join(root, 'package-lock.json')));
  } catch {
    // A release has no lockfile; it ships its assets prebuilt.
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Bundles `root`'s browser sources into `dir` (written beside and renamed, so a server reading
 * the folder never sees half a build). `modules` is where the bundled packages resolve from
 * when `root` has no dev dependencies (a release stage).
 */
export async function buildUi(root, dir, modules = join(import.meta.dirname, '..', '..', 'node_modules')) {
  const esbuild = await import('esbuild');
  const tmp = `${dir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await esbuild.build({
    entryPoints: { app: join(root, WEB, 'main.tsx') },
    outdir: tmp,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    nodePaths: [modules],
    logLevel: 'silent',
  });
  copyFileSync(join(root, WEB, 'index.html'), join(tmp, 'index.html'));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

/**
 * The folder holding the dashboard's assets for the installation or checkout at `root`: a
 * release's prebuilt `dist/ui/`, else a build keyed by the sources in the compile cache (made
 * now when missing). Throws when neither exists and esbuild is not installed.
 */
export async function uiAssets(root, cacheDir = join(root, '.tools', 'compile-cache')) {
  const release = join(root, RELEASE_UI_DIR);
  if (UI_FILES.every((f) => existsSync(join(release, f)))) return release;
  const dir = join(cacheDir, 'ui', uiKey(root));
  if (!UI_FILES.every((f) => existsSync(join(dir, f)))) await buildUi(root, dir);
  return dir;
}
