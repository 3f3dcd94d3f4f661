/** What a tunnel's handshake says (src/tunnels/handshake.ts), on either carrier. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseReply, parseRequest } from '../../../src/tunnels/handshake.ts';

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
});
