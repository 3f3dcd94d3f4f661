/**
 * A tunnel whose target is this very node (src/tunnels/local-target.ts, openLocal): the client
 * socket is piped to a connection to the exposed port, half-close passes both ways, and once
 * both sockets closed they let go of the tunnel (src/runtime/closed-socket.ts).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { TunnelLedger } from '../../../src/tunnels/ledger.ts';
import { openLocal } from '../../../src/tunnels/local-target.ts';
import { readAll, socketPair } from '../../helpers/sockets.ts';

describe('a tunnel to this node', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  test('pipes both ways with half-close, and its closed sockets keep no listener of it', async () => {
    // The exposed port: answers once the request has ended, then ends too.
    const exposed = createServer({ allowHalfOpen: true }, (s) => {
      readAll(s).then((req) => s.end(`answer to ${req}`));
    });
    servers.push(exposed);
    await new Promise<void>((r) => exposed.listen(0, '127.0.0.1', () => r()));
    const port = (exposed.address() as { port: number }).port;

    const ledger = new TunnelLedger({ maxPerPeer: 4, maxTotal: 8 }, pino({ level: 'silent' }));
    const tunnel = await openLocal(port, ledger);
    const [client, near] = await socketPair(servers);
    const attached = tunnel.attach(near);
    const answer = readAll(client);
    client.end('request');
    assert.equal((await answer).toString(), 'answer to request');
    await attached;
    // The splice's own end of the client socket (the target's end is inside openLocal).
    assert.equal(near.destroyed, true);
    assert.deepEqual(near.eventNames(), ['error']);
  });
});
