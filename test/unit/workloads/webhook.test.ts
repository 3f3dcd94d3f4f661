import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signWebhook, verifyWebhook } from '../../../src/workloads/webhook.ts';

describe('webhook signatures', () => {
  const secret = 'whsec_test';
  const body = Buffer.from('{"url":"http://x/y.tgz"}');
  const now = 1_700_000_000_000;
  const ts = String(now / 1000);

  it('accepts a good signature within the window', () => {
    const exp = verifyWebhook(secret, ts, signWebhook(secret, ts, body), body, now);
    assert.equal(exp, (now / 1000 + 300) * 1000);
  });

  it('refuses a bad signature, a changed body, an old timestamp, a missing secret', () => {
    const sig = signWebhook(secret, ts, body);
    const no = { name: 'WebhookAuthError', code: 'WEBHOOK_UNAUTHORIZED' };
    assert.throws(() => verifyWebhook(secret, ts, signWebhook('other', ts, body), body, now), no);
    assert.throws(() => verifyWebhook(secret, ts, sig, Buffer.from('{"url":"http://evil"}'), now), no);
    assert.throws(() => verifyWebhook(secret, ts, sig, body, now + 301_000), no);
    assert.throws(() => verifyWebhook(undefined, ts, sig, body, now), no);
    assert.throws(() => verifyWebhook(secret, undefined, sig, body, now), no);
    assert.throws(() => verifyWebhook(secret, ts, 'sha256=00', body, now), no);
  });
});
