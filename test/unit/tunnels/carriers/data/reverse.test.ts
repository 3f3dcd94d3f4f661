/**
 * Reverse data connections (src/tunnels/carriers/data/reverse.ts): a request to dial back is
 * checked like a ticket grant, and the asked node dials only where it knows the asker to be.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Connection } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { reverseHosts, reverseRequestOf } from '../../../../../src/tunnels/carriers/data/reverse.ts';
import { codeOf } from '../../../../helpers/errors.ts';

const ticket = () => ({
  id: randomBytes(16).toString('base64url'),
  key: randomBytes(32).toString('base64url'),
});
const connFrom = (addr: string) => ({ remoteAddr: multiaddr(addr) }) as unknown as Connection;

describe('reverse data connections', () => {
  test('a reverse request carries 1 to 8 well-formed tickets; other headers are not one', () => {
    const t = ticket();
    assert.deepEqual(reverseRequestOf({ reverse: { port: 7000, tickets: [t] } }), {
      port: 7000,
      tickets: [t],
    });
    assert.equal(reverseRequestOf({ service: 'db' }), undefined);
    for (const bad of [
      { reverse: { port: 7000, tickets: [] } },
      { reverse: { port: 7000, tickets: Array.from({ length: 9 }, ticket) } },
      { reverse: { port: 0, tickets: [t] } },
      { reverse: { port: 7000, tickets: [{ id: 'x', key: 'y' }] } },
      { reverse: { port: 7000, host: 'evil.example', tickets: [t] } },
      { reverse: null },
      { reverse: { port: 7000, tickets: [t] }, port: 5 },
    ])
      assert.equal(
        codeOf(() => reverseRequestOf(bad)),
        'BAD_HEADER',
        JSON.stringify(bad),
      );
  });

  test('only addresses where the asker is known are dialled, its listener host first', () => {
    const grant = { port: 7000, tickets: [ticket()] };
    const known = [multiaddr('/ip4/10.0.0.5/tcp/7001'), multiaddr('/ip4/10.0.0.9/tcp/7001/p2p-circuit')];
    assert.deepEqual(reverseHosts(grant, connFrom('/ip4/192.0.2.7/tcp/40000'), known), [
      '192.0.2.7',
      '10.0.0.5',
    ]);
    assert.deepEqual(
      reverseHosts({ ...grant, host: '10.0.0.5' }, connFrom('/ip4/192.0.2.7/tcp/40000'), known),
      ['10.0.0.5', '192.0.2.7'],
    );
    // A host the asker names but is not known at is ignored; a relayed connection's IP is the relay's.
    assert.deepEqual(
      reverseHosts(
        { ...grant, host: '203.0.113.1' },
        connFrom('/ip4/10.0.0.9/tcp/7001/p2p/QmRelay/p2p-circuit'),
        known,
      ),
      ['10.0.0.5'],
    );
  });
});
