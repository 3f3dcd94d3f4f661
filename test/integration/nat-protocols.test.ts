/**
 * Hostile cases for the NAT protocols (issue 14): `/plexus/dialback/1.0.0` and
 * `/plexus/punch/1.0.0`, on real libp2p nodes built as the agent builds them, on loopback, with
 * the members-only gater. A stranger gets no connection at all; a member gets dial-backs only
 * to the address its connection came from, on a few ports, at a bounded rate, with frames of a
 * bounded size; a punch dials only what the member itself published.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Connection, Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import pino from 'pino';
import { DIALBACK_PROTOCOL, MAX_DIALBACK_FRAME_BYTES, PUNCH_PROTOCOL } from '../../src/mesh/constants.ts';
import { askDialback, DialbackService } from '../../src/mesh/dialback.ts';
import { createGater } from '../../src/mesh/gater.ts';
import { jsonChannel } from '../../src/mesh/json-stream.ts';
import type { Membership } from '../../src/mesh/membership.ts';
import type { PlexusLibp2p } from '../../src/mesh/node.ts';
import { HolePuncher } from '../../src/mesh/punch.ts';
import type { TelemetryBus } from '../../src/mesh/telemetry.ts';
import { loopbackNode } from '../helpers/libp2p-nodes.ts';

const logger = pino({ level: 'silent' });
const members = new Set<string>();
const membership = {
  isMember: (id: string) => members.has(id),
  isRevoked: () => false,
} as unknown as Membership;

const node = () => loopbackNode(createGater(membership));

/** A TCP listener that counts the connections it gets (a third party that must not be dialled). */
function spy(host: string): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer((s) => {
    hits++;
    s.destroy();
  });
  return new Promise((resolve) =>
    server.listen(0, host, () =>
      resolve({ server, port: (server.address() as { port: number }).port, hits: () => hits }),
    ),
  );
}

/** Sends `request` raw on `protocol` over `conn` and reads the one reply. */
async function exchange(conn: Connection, protocol: string, request: unknown): Promise<unknown> {
  const stream = await conn.newStream(protocol, { runOnLimitedConnection: true });
  const ch = jsonChannel(stream, 64 * 1024);
  await ch.write(request);
  const reply = await ch.read(AbortSignal.timeout(15_000));
  await stream.close().catch(() => {});
  return reply;
}

const codeOf = (reply: unknown) => (reply as { error?: { code: string } }).error?.code;
const port = (n: PlexusLibp2p) => Number(n.getMultiaddrs()[0].toString().split('/tcp/')[1].split('/')[0]);

describe('dial-back and punch protocols, hostile cases', () => {
  let server: PlexusLibp2p;
  let member: PlexusLibp2p;
  let other: PlexusLibp2p;
  let stranger: PlexusLibp2p;
  let toServer: Connection;

  before(async () => {
    [server, member, other, stranger] = [await node(), await node(), await node(), await node()];
    for (const n of [server, member, other]) members.add(n.peerId.toString());
    await new DialbackService({ node: server, membership }).start();
    toServer = await member.dial(server.getMultiaddrs()[0]);
  });
  after(async () => {
    await Promise.all([server, member, other, stranger].map((n) => n.stop()));
  });

  test('a member learns it is dialable: the server dials the address it saw, and the peer must be the member', async () => {
    const reply = await askDialback(toServer, [port(member)], AbortSignal.timeout(15_000));
    assert.ok(!('error' in reply), JSON.stringify(reply));
    assert.match(reply.observed, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/);
    assert.deepEqual(reply.results, [{ port: port(member), ok: true }]);
  });

  test('a stranger gets no connection, so no dial-back', async () => {
    await assert.rejects(stranger.dialProtocol(server.getMultiaddrs()[0], DIALBACK_PROTOCOL));
    assert.equal(server.getConnections(stranger.peerId).length, 0);
  });

  test('a port where another peer or a plain service listens is not ok: the dial must reach the asker itself', async () => {
    const plain = await spy('127.0.0.1');
    const reply = await exchange(toServer, DIALBACK_PROTOCOL, { ports: [port(other), plain.port] });
    assert.deepEqual((reply as { results: unknown }).results, [
      { port: port(other), ok: false },
      { port: plain.port, ok: false },
    ]);
    plain.server.close();
  });

  test('an address named in the request is refused, and nothing is dialled there', async () => {
    const elsewhere = await spy('127.0.0.2');
    for (const request of [
      { ports: [elsewhere.port], ip: '127.0.0.2' },
      { addrs: [`/ip4/127.0.0.2/tcp/${elsewhere.port}`] },
      { ports: [1, 2, 3, 4, 5] },
      { ports: [0] },
      { ports: ['7070'] },
    ])
      assert.equal(
        codeOf(await exchange(toServer, DIALBACK_PROTOCOL, request)),
        'MALFORMED',
        JSON.stringify(request),
      );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(elsewhere.hits(), 0);
    elsewhere.server.close();
  });

  test('an oversized request is refused with FRAME_TOO_LARGE', async () => {
    const big = { ports: [1], pad: 'x'.repeat(MAX_DIALBACK_FRAME_BYTES) };
    assert.equal(codeOf(await exchange(toServer, DIALBACK_PROTOCOL, big)), 'FRAME_TOO_LARGE');
  });

  test('a member asking again and again is rate-limited', async () => {
    // Two valid requests above used 2 of the 3 tokens; malformed and oversized ones use none.
    const asks = [];
    for (let i = 0; i < 4; i++)
      asks.push(codeOf(await exchange(toServer, DIALBACK_PROTOCOL, { ports: [port(member)] })));
    assert.deepEqual(asks, [undefined, 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED']);
  });

  test('a punch over a direct connection, or to an address the member did not publish, is refused', async () => {
    const published = new Map<string, string[]>();
    const telemetry = { latest: (id: string) => ({ nat: { observed: published.get(id) ?? [] } }) };
    const puncher = new HolePuncher({
      node: server,
      membership,
      telemetry: telemetry as unknown as TelemetryBus,
      logger,
      ownObservedIp: () => '127.0.0.1',
      behindNat: () => true,
      punched: () => {},
    });
    await puncher.start();
    const elsewhere = await spy('127.0.0.2');
    const offer = { ip: '127.0.0.2', port: elsewhere.port };
    assert.equal(codeOf(await exchange(toServer, PUNCH_PROTOCOL, offer)), 'NOT_RELAYED');
    // The same offer as if it came over a relay: the member never published 127.0.0.2.
    const relayed = {
      remotePeer: member.peerId,
      remoteAddr: multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${other.peerId}/p2p-circuit/p2p/${member.peerId}`),
    } as unknown as Connection;
    const TEST_PROTOCOL = '/plexus/test-punch/1.0.0';
    await server.handle(TEST_PROTOCOL, (stream: Stream) => puncher.serve(stream, relayed));
    assert.equal(codeOf(await exchange(toServer, TEST_PROTOCOL, offer)), 'NOT_OBSERVED');
    assert.equal(codeOf(await exchange(toServer, TEST_PROTOCOL, { ip: '127.0.0.1', port: 80 })), 'MALFORMED');
    assert.equal(
      codeOf(await exchange(toServer, TEST_PROTOCOL, { ip: 'example.com', port: elsewhere.port })),
      'MALFORMED',
    );
    members.delete(member.peerId.toString());
    assert.equal(codeOf(await exchange(toServer, TEST_PROTOCOL, offer)), 'NOT_MEMBER');
    members.add(member.peerId.toString());
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(elsewhere.hits(), 0);
    elsewhere.server.close();
  });
});
