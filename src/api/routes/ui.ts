/**
 * `GET /ui/`: the dashboard served by the agent itself (docs/ui.md, "The agent's /ui/"). The page
 * signs every command in the browser with a key the person imported (WebCrypto Ed25519, not
 * extractable, kept in IndexedDB) and posts it to /v1/commands like any client: this route only
 * hands out three static files. They are read from disk on each request and never kept, and no
 * UI code runs in the agent, so an agent nobody browses holds nothing of the dashboard.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UiNotBuiltError } from '../errors.ts';
import type { Router } from '../http.ts';

/**
 * The dashboard's policy, here and under `plexus ui` (src/cli/ui/server.ts): scripts and styles
 * only from this origin, no eval, no plugins, no frames. Styles also allow inline: xterm.js
 * writes its theme and cell sizes into <style> elements it creates (it offers no nonce); scripts
 * stay strictly 'self'.
 */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const FILES: Record<string, [string, string]> = {
  '/ui': ['index.html', 'text/html; charset=utf-8'],
  '/ui/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/ui/app.css': ['app.css', 'text/css; charset=utf-8'],
};

/** Mounts /ui/ and its two assets; `assetsDir()` finds them (undefined: not built). */
export function mountUiRoutes(router: Router, deps: { assetsDir: () => string | undefined }): void {
  for (const [path, [file, type]] of Object.entries(FILES)) {
    router.route('GET', path, async (_req, res) => {
      const dir = deps.assetsDir();
      if (!dir) throw new UiNotBuiltError();
      const body = await readFile(join(dir, file)).catch(() => {
        throw new UiNotBuiltError();
      });
      res.writeHead(200, {
        'content-type': type,
        'content-security-policy': UI_CSP,
        'x-frame-options': 'DENY',
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-store',
      });
      res.end(body);
    });
  }
}

/**
 * Where the installation at `root` keeps the dashboard's assets: a release's `dist/ui/`, else
 * the newest build in a checkout's compile cache (scripts/build makes it). Looked up per request:
 * cheap (a few stats), and an agent that is never browsed never looks.
 */
export function findUiAssets(root: string): string | undefined {
  const complete = (dir: string) =>
    ['index.html', 'app.js', 'app.css'].every((f) => existsSync(join(dir, f)));
  const release = join(root, 'dist', 'ui');
  if (complete(release)) return release;
  const cache = join(root, '.tools', 'compile-cache', 'ui');
  try {
    return readdirSync(cache)
      .map((d) => join(cache, d))
      .filter(complete)
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  } catch {
    return undefined;
  }
}
