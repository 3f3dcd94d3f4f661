/**
 * DNS rebinding (issue 12): a page on `evil.example` whose name the attacker re-points at
 * 127.0.0.1 reaches the API with `Host: evil.example`. Every route, hooks and commands included,
 * answers such a request with 421 and does nothing; loopback names, IP literals and the names in
 * `api.hosts` are served. In-process through the real router with every route module mounted,
 * and once over a real loopback socket (HTTP/1.0 without Host).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import pino from 'pino';
import { z } from 'zod';
import { createHttpApi } from '../../../src/api/http.ts';
import { mountCommandRoutes } from '../../../src/api/routes/commands.ts';
import { mountHealthRoutes } from '../../../src/api/routes/health.ts';
import { mountHookRoutes } from '../../../src/api/routes/hooks.ts';
import { mountTelemetryRoutes } from '../../../src/api/routes/telemetry.ts';
import { signCommand } from '../../../src/commands/envelope.ts';
import { ActionRegistry, defineAction } from '../../../src/core/actions.ts';
import { generateSigner } from '../../../src/crypto/ed25519.ts';
import { signWebhook } from '../../../src/workloads/webhook.ts';
import { commandNode } from '../../helpers/commands.ts';

const admin = generateSigner().signer;
const SECRET = 'whsec-test-0123456789';

function setup() {
  const ran: string[] = [];
  const deploys: string[] = [];
  const actions = new ActionRegistry();
  actions.register(
    defineAction({
      name: 'telemetry.history',
      describe: 'history',
      access: 'read',
      args: z.object({ node: z.string(), since: z.number().optional(), resolution: z.string().optional() }),
      handler: async (a) => {
        ran.push(`history ${a.node}`);
        return { node: a.node, points: [] };
      },
    }),
    defineAction({
      name: 'test.read',
      describe: 'read',
      access: 'read',
      args: z.object({}),
      handler: async () => {
        ran.push('read');
        return 'ok';
      },
    }),
  );
  const { self, audit, service } = commandNode({ admin, actions });
  const api = createHttpApi(
    { listen: '127.0.0.1:0', maxBodyBytes: 64 * 1024, hosts: ['plexus.example.com'] },
    { logger: pino({ level: 'silent' }) },
  );
  mountHealthRoutes(api, { version: 'test', startedAt: Date.now() });
  mountCommandRoutes(api, {
    commands: service,
    self: () => ({ name: 'n1', peerId: self, networkId: 'plx-0000000000000000', admission: null }),
  });
  mountHookRoutes(api, {
    workloads: {
      acceptWebhook(app: string) {
        deploys.push(app);
        return { app, accepted: true as const };
      },
    },
  });
  mountTelemetryRoutes(api, {
    commands: service,
    metrics: async () => ({ contentType: 'text/plain', body: 'plexus_up 1\n' }),
    metricsToken: 'metrics-token-0123456789',
  });

  /** Every route, as a request that would do something if served. */
  const requests = (host: string) => {
    const cmd = signCommand(admin, { target: self, action: 'test.read' }).envelope;
    const history = signCommand(admin, {
      target: self,
      action: 'telemetry.history',
      args: { node: 'web-1' },
    }).envelope;
    const ts = String(Math.floor(Date.now() / 1000));
    const hook = JSON.stringify({ url: 'https://example.invalid/v2.tgz' });
    return [
      api.request('GET', '/health', { headers: { host } }),
      api.request('GET', '/v1/node', { headers: { host } }),
      api.request('POST', '/v1/commands', {
        headers: { host, 'content-type': 'application/x-ndjson' },
        body: `${JSON.stringify(cmd)}\n`,
      }),
      api.request('POST', '/v1/hooks/web', {
        headers: {
          host,
          'content-type': 'application/json',
          'x-plexus-timestamp': ts,
          'x-plexus-signature': signWebhook(SECRET, ts, hook),
        },
        body: hook,
      }),
      api.request('GET', '/v1/telemetry?node=web-1', {
        headers: {
          host,
          authorization: `Plexus ${Buffer.from(JSON.stringify(history)).toString('base64url')}`,
        },
      }),
      api.request('GET', '/metrics', { headers: { host, authorization: 'Bearer metrics-token-0123456789' } }),
      api.request('GET', '/no/such/route', { headers: { host } }),
    ];
  };
  return { api, audit, ran, deploys, requests };
}

const errorOf = (res: { json<T>(): T }) => res.json<{ error: { code: string; message: string } }>().error;

describe('HTTP API host allowlist (DNS rebinding)', () => {
  it('a foreign Host gets 421 HOST_NOT_ALLOWED on every route, and nothing runs, deploys or is audited', async () => {
    const t = setup();
    for (const host of [
      'evil.example',
      'evil.example:7071',
      '127.0.0.1.evil.example',
      'localhost.evil.example',
    ]) {
      for (const res of await Promise.all(t.requests(host))) {
        assert.equal(res.status, 421, host);
        const err = errorOf(res);
        assert.equal(err.code, 'HOST_NOT_ALLOWED');
        assert.match(err.message, /api\.hosts/, 'the message names the config key');
        assert.doesNotMatch(err.message, /\n/);
      }
    }
    assert.deepEqual(t.ran, [], 'no action ran');
    assert.deepEqual(t.deploys, [], 'no deploy started');
    assert.deepEqual(t.audit.list(), [], 'no audit row');
  });

  it('malformed Host values are refused too', async () => {
    const t = setup();
    for (const host of [
      '[zz::1]:7071',
      '[::1',
      '127.0.0.1 evil.example',
      'x'.repeat(300),
      '',
      'evil.example:99999',
    ]) {
      const res = await t.api.request('GET', '/health', { headers: { host } });
      assert.equal(res.status, 421, JSON.stringify(host));
      assert.equal(errorOf(res).code, 'HOST_NOT_ALLOWED');
    }
  });

  it('loopback names, IP literals and configured names are served, in any case and with a trailing dot', async () => {
    const t = setup();
    for (const host of [
      '127.0.0.1:7071',
      '127.0.0.1',
      '10.1.2.3:7071',
      'localhost:7071',
      'LocalHost',
      'api.localhost:7071',
      '[::1]:7071',
      '[::1]',
      '[2001:db8::7]:7071',
      'plexus.example.com',
      'PLEXUS.example.com.:7071',
    ]) {
      const res = await t.api.request('GET', '/health', { headers: { host } });
      assert.equal(res.status, 200, host);
    }
    const served = await Promise.all(t.requests('127.0.0.1:7071'));
    assert.deepEqual(
      served.map((r) => r.status),
      [200, 200, 200, 202, 200, 200, 404],
    );
    assert.deepEqual(t.ran.sort(), ['history web-1', 'read']);
    assert.deepEqual(t.deploys, ['web']);
  });

  it('over a real socket: an HTTP/1.0 request without Host and one naming evil.example are refused', async (t) => {
    const { api } = setup();
    await api.start();
    t.after(() => api.stop());
    const port = api.address!.port;
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const s = connect(port, '127.0.0.1');
        let text = '';
        s.setEncoding('utf8');
        s.on('data', (c) => (text += c));
        s.on('end', () => resolve(text));
        s.on('error', reject);
        s.end(request);
      });
    const noHost = await raw('GET /health HTTP/1.0\r\n\r\n');
    assert.match(noHost, /^HTTP\/1\.[01] 421 /);
    assert.match(noHost, /HOST_NOT_ALLOWED/);
    const evil = await raw('GET /health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    assert.match(evil, /^HTTP\/1\.1 421 /);
    const ok = await raw(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    assert.match(ok, /^HTTP\/1\.1 200 /);
  });
});
