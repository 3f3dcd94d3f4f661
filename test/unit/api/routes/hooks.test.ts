/**
 * `POST /v1/hooks/:app`, in-process. The webhook check is the real one (HMAC, timestamp window,
 * replay); what stands in for the workload manager only records the deploy it would start, as a
 * real deploy needs an app, a release and a process.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { createHttpApi } from '../../../../src/api/http.ts';
import { mountHookRoutes } from '../../../../src/api/routes/hooks.ts';
import { WebhookReplayError } from '../../../../src/workloads/errors.ts';
import { parseWebhookBody, signWebhook, verifyWebhook } from '../../../../src/workloads/webhook.ts';

const SECRET = 'whsec-test-0123456789';

function setup() {
  const deploys: { app: string; url: string }[] = [];
  const used = new Set<string>();
  const workloads = {
    // The manager's order: verify (unknown apps have no secret), refuse replays, parse, deploy.
    acceptWebhook(app: string, call: { timestamp?: string; signature?: string; body: Buffer }) {
      verifyWebhook(app === 'web' ? SECRET : undefined, call.timestamp, call.signature, call.body);
      if (used.has(call.signature!)) throw new WebhookReplayError();
      used.add(call.signature!);
      deploys.push({ app, url: parseWebhookBody(call.body).url });
      return { app, accepted: true as const };
    },
  };
  const api = createHttpApi(
    { listen: '127.0.0.1:0', maxBodyBytes: 1024 * 1024 },
    { logger: pino({ level: 'silent' }) },
  );
  mountHookRoutes(api, { workloads });
  const call = (app: string, body: string, headers: Record<string, string>) =>
    api.request('POST', `/v1/hooks/${app}`, {
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
  return { deploys, call };
}

const now = () => String(Math.floor(Date.now() / 1000));
const errorOf = (res: { json<T>(): T }) => res.json<{ error: { code: string; message: string } }>().error;

describe('webhook route', () => {
  it('a correctly signed call is accepted with 202; its replay is refused', async () => {
    const t = setup();
    const body = JSON.stringify({ url: 'https://example.invalid/v2.tgz' });
    const ts = now();
    const headers = { 'x-plexus-timestamp': ts, 'x-plexus-signature': signWebhook(SECRET, ts, body) };
    const res = await t.call('web', body, headers);
    assert.equal(res.status, 202);
    assert.deepEqual(res.json(), { app: 'web', accepted: true });
    assert.deepEqual(t.deploys, [{ app: 'web', url: 'https://example.invalid/v2.tgz' }]);
    const again = await t.call('web', body, headers);
    assert.equal(again.status, 401);
    assert.equal(t.deploys.length, 1);
  });

  it('a forged signature, a missing one, a stale timestamp and an unknown app are 401 with an error body', async () => {
    const t = setup();
    const body = JSON.stringify({ url: 'https://example.invalid/v2.tgz' });
    const ts = now();
    const old = String(Math.floor(Date.now() / 1000) - 3600);
    const refused = [
      await t.call('web', body, {
        'x-plexus-timestamp': ts,
        'x-plexus-signature': signWebhook('guess', ts, body),
      }),
      await t.call('web', body, { 'x-plexus-timestamp': ts }),
      await t.call('web', body, {}),
      await t.call('web', body, {
        'x-plexus-timestamp': old,
        'x-plexus-signature': signWebhook(SECRET, old, body),
      }),
      await t.call('other', body, {
        'x-plexus-timestamp': ts,
        'x-plexus-signature': signWebhook(SECRET, ts, body),
      }),
    ];
    for (const res of refused) {
      assert.equal(res.status, 401);
      const error = errorOf(res);
      assert.equal(error.code, 'WEBHOOK_UNAUTHORIZED');
      assert.equal(typeof error.message, 'string');
    }
    assert.deepEqual(t.deploys, []);
  });

  it('an oversized body is refused with 413 before it is checked', async () => {
    const t = setup();
    const body = JSON.stringify({ url: `https://example.invalid/${'a'.repeat(17 * 1024)}` });
    const ts = now();
    const res = await t.call('web', body, {
      'x-plexus-timestamp': ts,
      'x-plexus-signature': signWebhook(SECRET, ts, body),
    });
    assert.equal(res.status, 413);
    assert.equal(errorOf(res).code, 'BODY_TOO_LARGE');
    assert.deepEqual(t.deploys, []);
  });
});
