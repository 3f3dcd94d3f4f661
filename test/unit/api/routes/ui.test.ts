/**
 * `GET /ui/` (the dashboard served by the agent), in-process: three static files under a strict
 * CSP, read per request; nothing else under /ui/ (no path reaches another file), a clear error
 * when the assets were never built, and the API's Host guard in front of it like every route.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { createHttpApi } from '../../../../src/api/http.ts';
import { findUiAssets, mountUiRoutes } from '../../../../src/api/routes/ui.ts';

describe('ui route', () => {
  it('serves index.html, app.js and app.css under a strict CSP, and nothing else', async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'plexus-ui-route-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    const api = createHttpApi(
      { listen: '127.0.0.1:0', maxBodyBytes: 1024 },
      { logger: pino({ level: 'silent' }) },
    );
    mountUiRoutes(api, { assetsDir: () => findUiAssets(root) });

    const missing = await api.request('GET', '/ui/');
    assert.equal(missing.status, 404);
    assert.equal(missing.json<{ error: { code: string } }>().error.code, 'UI_NOT_BUILT');

    const dir = join(root, 'dist', 'ui');
    mkdirSync(dir, { recursive: true });
    for (const f of ['index.html', 'app.js', 'app.css']) writeFileSync(join(dir, f), `/* ${f} */`);
    writeFileSync(join(root, 'secret.txt'), 'not for the web');
    const page = await api.request('GET', '/ui/');
    assert.equal(page.status, 200);
    assert.equal(page.text(), '/* index.html */');
    const csp = page.headers['content-security-policy'];
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-eval/);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.equal((await api.request('GET', '/ui/app.js')).text(), '/* app.js */');
    for (const path of ['/ui/../secret.txt', '/ui/%2e%2e/secret.txt', '/ui/index.html/x', '/ui/secret.txt']) {
      const r = await api.request('GET', path);
      assert.notEqual(r.status, 200, path);
      assert.doesNotMatch(r.text(), /not for the web/, path);
    }
    const foreign = await api.request('GET', '/ui/', { headers: { host: 'evil.example' } });
    assert.equal(foreign.status, 421);
    const post = await api.request('POST', '/ui/', { body: '{}' });
    assert.equal(post.json<{ error: { code: string } }>().error.code, 'METHOD_NOT_ALLOWED');
  });
});
