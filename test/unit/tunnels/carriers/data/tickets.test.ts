/**
 * The ticket frames of tunnel data connections (src/tunnels/carriers/data/tickets.ts): a ticket
 * request's count is bounded, and a grant is checked before any of it is used.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { parseTicketGrant, ticketRequestOf } from '../../../../../src/tunnels/carriers/data/tickets.ts';
import { codeOf } from '../../../../helpers/errors.ts';

describe('data ticket frames', () => {
  const ticket = { id: randomBytes(16).toString('base64url'), key: randomBytes(32).toString('base64url') };

  test('a ticket request asks for 1 to 64; other headers are not ticket requests', () => {
    assert.equal(ticketRequestOf({ tickets: 16 }), 16);
    assert.equal(ticketRequestOf({ service: 'db' }), undefined);
    for (const bad of [
      { tickets: 0 },
      { tickets: 65 },
      { tickets: 1.5 },
      { tickets: '2' },
      { tickets: 1, port: 5 },
    ])
      assert.equal(
        codeOf(() => ticketRequestOf(bad)),
        'BAD_HEADER',
        JSON.stringify(bad),
      );
  });

  test('a grant is checked: port, host, ticket shapes, no more than asked for', () => {
    assert.deepEqual(parseTicketGrant({ ok: true, port: 7073, tickets: [ticket] }, 1), {
      port: 7073,
      tickets: [ticket],
    });
    assert.equal(
      parseTicketGrant({ ok: true, port: 1, host: '10.0.0.2', tickets: [ticket] }, 4).host,
      '10.0.0.2',
    );
    for (const bad of [
      { ok: true, port: 0, tickets: [ticket] },
      { ok: true, port: 7073, tickets: [] },
      { ok: true, port: 7073, tickets: [ticket, ticket] },
      { ok: true, port: 7073, host: 'example.com', tickets: [ticket] },
      { ok: true, port: 7073, tickets: [{ id: 'short', key: ticket.key }] },
      { ok: true, port: 7073, tickets: [{ ...ticket, key: `${ticket.key.slice(0, 42)}=` }] },
      'garbage',
    ])
      assert.equal(
        codeOf(() => parseTicketGrant(bad, 1)),
        'BAD_REPLY',
        JSON.stringify(bad),
      );
    assert.equal(
      codeOf(() => parseTicketGrant({ ok: false, code: 'DATA_PATH_OFF', message: 'off' }, 1)),
      'DATA_PATH_OFF',
    );
  });
});
