/** What a tunnel's handshake says (src/tunnels/handshake.ts), on either carrier. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseReply, parseRequest, wantsReuse } from '../../../src/tunnels/handshake.ts';

describe('handshake', () => {
  test('requests are {service} or {port}, nothing else', () => {
    assert.deepEqual(parseRequest({ service: 'db' }), { service: 'db' });
    assert.deepEqual(parseRequest({ port: 5432 }), { port: 5432 });
    for (const bad of [
      null,
      [],
      {},
      { service: 'DB' },
      { port: 0 },
      { port: 1.5 },
      { service: 'a', port: 1 },
      'db',
    ])
      assert.throws(() => parseRequest(bad), { name: 'TunnelProtocolError' }, JSON.stringify(bad));
  });

  test('replies carry a code and a bounded message', () => {
    assert.deepEqual(parseReply({ ok: true }), { ok: true });
    const r = parseReply({ ok: false, code: 'TARGET_REFUSED', message: 'x'.repeat(2000) });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.message.length, 512);
    assert.throws(() => parseReply({ ok: 'yes' }), { name: 'TunnelProtocolError' });
  });

  test('reuse is asked and agreed with a literal true, and does not change what a request means', () => {
    assert.deepEqual(parseRequest({ service: 'db', reuse: true }), { service: 'db' });
    assert.deepEqual(parseReply({ ok: true, reuse: true }), { ok: true });
    assert.equal(wantsReuse({ service: 'db', reuse: true }), true);
    for (const no of [{ service: 'db' }, { reuse: 'true' }, { reuse: 1 }, null, 'reuse'])
      assert.equal(wantsReuse(no), false, JSON.stringify(no));
  });
});
