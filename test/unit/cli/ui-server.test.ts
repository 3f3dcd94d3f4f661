/**
 * `plexus ui`'s local server refuses whatever does not come from its own page (docs/ui.md, "No
 * CSRF surface"): a missing or wrong secret, another Host (DNS rebinding) or Origin, a
 * cross-site fetch, oversized or malformed bodies, and actions the routes do not carry. Every
 * refusal is `{error:{code,message}}` and reaches no node: the client here records every call.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AgentClient } from '../../../src/cli/client.ts';
import { RemoteError } from '../../../src/cli/client.ts';
import { FleetHub } from '../../../src/cli/ui/fleet.ts';
import { parseLoopbackListen } from '../../../src/cli/ui/guard.ts';
import { CSP, startUiServer, type UiServer } from '../../../src/cli/ui/server.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One raw request (fetch would not let us set Host or send a forged Origin). */
function send(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: { host: `127.0.0.1:${port}`, ...opts.headers },
      },
      (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('plexus ui: the local server', () => {
  let dir: string;
  let server: UiServer;
  let port: number;
  let secret: string;
  const calls: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'plexus-ui-unit-'));
    for (const f of ['index.html', 'app.js', 'app.css']) writeFileSync(join(dir, f), `/* ${f} */`);
    const client: AgentClient = {
      async call(action, args) {
        calls.push(action);
        if (action === 'apps.restart')
          throw new RemoteError({
            code: 'FORBIDDEN_ROLE',
            message: 'role viewer may not run apps.restart',
            kind: 'denied',
          });
        return { action, args };
      },
    };
    const clientFor = () => client;
    server = await startUiServer({
      listen: '127.0.0.1:0',
      assets: dir,
      clientFor,
      fleet: new FleetHub(clientFor, 'kid'),
    });
    const u = new URL(server.url);
    port = Number(u.port);
    secret = u.hash.replace('#s=', '');
  });

  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const api = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    send(port, path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-plexus-ui': secret, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const codeOf = (a: Answer) => (JSON.parse(a.body) as { error: { code: string } }).error.code;

  it('serves the page under a strict CSP, without the secret', async () => {
    const a = await send(port, '/');
    assert.equal(a.status, 200);
    assert.equal(a.headers['content-security-policy'], CSP);
    assert.match(CSP, /script-src 'self'(;|$)/);
    assert.doesNotMatch(CSP, /unsafe-eval|script-src[^;]*unsafe-inline/);
    assert.equal(a.headers['x-frame-options'], 'DENY');
  });

  it('runs a call with the secret and answers the node’s refusal as {error:{code,message}}', async () => {
    const ok = await api('/api/call', { node: 'n2', action: 'apps.list', args: {} });
    assert.equal(ok.status, 200, ok.body);
    assert.equal((JSON.parse(ok.body) as { result: { action: string } }).result.action, 'apps.list');
    // Closed after each answer: Chromium resends a POST on a reused connection that closed, and
    // this server would sign the resent call afresh and run it twice.
    assert.equal(ok.headers.connection, 'close');
    const refused = await api('/api/call', { action: 'apps.restart', args: { app: 'web' } });
    assert.equal(refused.status, 403);
    assert.deepEqual(JSON.parse(refused.body), {
      error: { code: 'FORBIDDEN_ROLE', message: 'role viewer may not run apps.restart' },
    });
  });

  it('refuses a missing or wrong secret', async () => {
    const before = calls.length;
    const missing = await send(port, '/api/call', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"action":"apps.list"}',
    });
    assert.equal(missing.status, 401);
    assert.equal(codeOf(missing), 'UI_SECRET_REQUIRED');
    const wrong = await api(
      '/api/call',
      { action: 'apps.list' },
      // The last character changed (to one it is not: 1 in 64 secrets end in 'x').
      { 'x-plexus-ui': `${secret.slice(0, -1)}${secret.endsWith('x') ? 'y' : 'x'}` },
    );
    assert.equal(wrong.status, 401);
    assert.equal(codeOf(wrong), 'UI_SECRET_REQUIRED');
    const events = await send(port, '/api/events');
    assert.equal(events.status, 401);
    assert.equal(calls.length, before, 'nothing reached a node');
  });

  it('refuses another Host (DNS rebinding), another Origin and a cross-site fetch, secret or not', async () => {
    const before = calls.length;
    const host = await api('/api/call', { action: 'apps.list' }, { host: `evil.example:${port}` });
    assert.equal(host.status, 421);
    assert.equal(codeOf(host), 'UI_HOST_NOT_ALLOWED');
    const page = await send(port, '/', { headers: { host: 'evil.example' } });
    assert.equal(page.status, 421);
    const origin = await api('/api/call', { action: 'apps.list' }, { origin: 'http://evil.example' });
    assert.equal(origin.status, 403);
    assert.equal(codeOf(origin), 'UI_ORIGIN_REFUSED');
    const site = await api('/api/call', { action: 'apps.list' }, { 'sec-fetch-site': 'cross-site' });
    assert.equal(site.status, 403);
    assert.equal(codeOf(site), 'UI_ORIGIN_REFUSED');
    const same = await api(
      '/api/call',
      { action: 'apps.list' },
      { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' },
    );
    assert.equal(same.status, 200);
    assert.equal(calls.length, before + 1, 'only the same-origin call reached a node');
  });

  it('refuses oversized, malformed and mistyped bodies', async () => {
    const before = calls.length;
    const big = await api('/api/call', { action: 'apps.list', args: { pad: 'x'.repeat(70 * 1024) } });
    assert.equal(big.status, 413);
    assert.equal(codeOf(big), 'UI_BODY_TOO_LARGE');
    const bad = await api('/api/call', '{"action":');
    assert.equal(bad.status, 400);
    assert.equal(codeOf(bad), 'UI_BAD_JSON');
    const type = await api('/api/call', { action: 'apps.list' }, { 'content-type': 'text/plain' });
    assert.equal(type.status, 415);
    for (const body of [
      { action: 'Apps List' },
      { action: 'apps.list', node: '../x' },
      { action: 'apps.list', args: [] },
    ]) {
      const a = await api('/api/call', body);
      assert.equal(a.status, 400, JSON.stringify(body));
      assert.equal(codeOf(a), 'UI_BAD_REQUEST');
    }
    const deploy = await api('/api/deploy?node=n1&app=web', 'x', { 'content-type': 'text/plain' });
    assert.equal(deploy.status, 415);
    assert.equal(calls.length, before);
  });

  it('streams only logs and terminals, opens terminals only on the stream route, and knows its sessions', async () => {
    const stream = await api('/api/stream', { action: 'node.exec', args: {} });
    assert.equal(stream.status, 400);
    const shell = await api('/api/call', { action: 'shell.open', args: {} });
    assert.equal(shell.status, 400);
    const input = await api('/api/input', { session: 'nope', frames: [{ t: 'd', d: 'aA==' }] });
    assert.equal(input.status, 404);
    assert.equal(codeOf(input), 'UI_BAD_INPUT');
    const tooMany = await api('/api/input', { session: 'nope', frames: Array(65).fill({ t: 'p' }) });
    assert.equal(tooMany.status, 400);
  });

  it('listens on loopback only', () => {
    assert.deepEqual(parseLoopbackListen('127.0.0.1:7073'), { host: '127.0.0.1', port: 7073 });
    assert.deepEqual(parseLoopbackListen('[::1]:0'), { host: '::1', port: 0 });
    for (const bad of ['0.0.0.0:7073', '10.0.0.5:7073', '[::]:7073', 'example.com:80', '7073'])
      assert.throws(() => parseLoopbackListen(bad), bad);
  });
});
