/**
 * Spliced data connections (docs/tunnels.md, spliced connections), in-process over loopback:
 * a relay's data listener joins two members' outbound connections that present its tickets,
 * and the TLS between the members runs through it. The carrier contract (intact bytes both
 * ways, half-close, reset, backpressure) holds over the splice; the relay refuses strangers,
 * forged, replayed and garbage preambles, non-members and revoked members, gives up on a side
 * that never comes, and a flood from one address does not keep a member's splice out.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import type { Connection } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import pino from 'pino';
import { dial } from '../../src/tunnels/carriers/data/dial.ts';
import { DataDialer } from '../../src/tunnels/carriers/data/dialer.ts';
import { DataListener, type RedeemedTicket } from '../../src/tunnels/carriers/data/listener.ts';
import { type DataConnection, dataConnection, spliceData } from '../../src/tunnels/carriers/data/splice.ts';
import type { DataTicket } from '../../src/tunnels/carriers/data/tickets.ts';
import { connectRelay, relayAddress } from '../../src/tunnels/carriers/spliced/open.ts';
import { SpliceRelay } from '../../src/tunnels/carriers/spliced/relay.ts';
import {
  encodePreamble,
  meetRequestOf,
  PREAMBLE_BYTES,
  spliceRequestOf,
} from '../../src/tunnels/carriers/spliced/wire.ts';
import { SPLICE_WAIT_MS } from '../../src/tunnels/constants.ts';
import { readAll, socketPair } from '../helpers/sockets.ts';
import { spliceContract } from '../helpers/splice-contract.ts';

const logger = pino({ level: 'silent' });
const [A, B, C, RELAY] = ['member-a', 'member-b', 'member-c', 'the-relay'];
const PEER_A = `12D3KooW${'a'.repeat(44)}`;

describe('spliced data connections', () => {
  const members = new Set([A, B, C]);
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  const relay = new SpliceRelay({ isMember: (p) => members.has(p), logger });
  const relayListener = new DataListener(
    { host: '127.0.0.1', port: 0 },
    {
      logger,
      onConnection: (_t, s) => s.destroy(),
      onSplice: (ticket, secret, raw, rest) => relay.arrive(ticket, secret, raw, rest),
    },
  );
  /** B's data listener: the TLS server end of what comes through the relay, to waiting pairs in order. */
  const onB: ((t: RedeemedTicket, s: TLSSocket, raw: Socket) => void)[] = [];
  const bListener = new DataListener(
    { host: '127.0.0.1', port: 0 },
    { logger, onConnection: (t, s, raw) => (onB.shift() ?? (() => s.destroy()))(t, s, raw) },
  );

  before(async () => {
    await relayListener.start();
    await bListener.start();
  });
  after(() => {
    relay.stop();
    relayListener.stop();
    bListener.stop();
    for (const s of servers) s.close();
    for (const s of sockets) s.destroy();
  });

  /** Rendezvous made by A with B, joined by B: each side's relay ticket. */
  function rendezvous(): { a: DataTicket; b: DataTicket } {
    const { ids, tickets } = relay.open(A, B, 1, RELAY);
    const [b] = relay.join(B, A, ids);
    return { a: tickets[0] as DataTicket, b: b as DataTicket };
  }

  /** A data connection from A to B spliced by the relay: both ends, after the TLS handshake. */
  async function splicedPair(): Promise<{ a: DataConnection; b: DataConnection }> {
    const { a, b } = rendezvous();
    const [e2e] = bListener.issue(A, 1);
    const atB = new Promise<DataConnection>((resolve) => {
      onB.push((t, s, raw) => {
        assert.equal(t.peer, A);
        resolve(dataConnection(s, raw));
      });
    });
    const raw = await connectRelay('127.0.0.1', relayListener.splicePort, b);
    bListener.acceptSpliced(raw);
    const near = await dial(
      '127.0.0.1',
      relayListener.splicePort,
      e2e as DataTicket,
      AbortSignal.timeout(10_000),
      {
        preamble: encodePreamble(a),
        timeoutMs: 10_000,
      },
    );
    const far = await atB;
    for (const d of [near, far]) sockets.push(d.raw);
    return { a: near, b: far };
  }

  /** client ⇄ spliceData ⇄ spliced TLS ⇄ spliceData ⇄ target, as the two agents run it. */
  async function tunnel() {
    const [client, near] = await socketPair(servers);
    const [farLocal, target] = await socketPair(servers);
    for (const s of [client, near, farLocal, target]) {
      s.on('error', () => {});
      sockets.push(s);
    }
    const { a, b } = await splicedPair();
    assert.equal(b.socket.getProtocol(), 'TLSv1.3');
    assert.equal(a.spliced, true);
    const results = Promise.all([spliceData(near, a), spliceData(farLocal, b)]);
    return { client, target, locals: [near, farLocal], results };
  }

  /** What a connection to the relay's splice port (or `port`) that sends `bytes` gets: refused, or kept. */
  function present(
    bytes: Buffer,
    localAddress?: string,
    port = relayListener.splicePort,
  ): Promise<'refused' | 'kept'> {
    return new Promise((resolve) => {
      const s = connect({
        port,
        host: '127.0.0.1',
        ...(localAddress ? { localAddress } : {}),
      });
      s.on('error', () => {});
      sockets.push(s);
      const timer = setTimeout(() => resolve('kept'), 300);
      s.once('close', () => {
        clearTimeout(timer);
        resolve('refused');
      });
      s.write(bytes);
    });
  }

  test('contract: bytes arrive intact both ways at once, with half-close each way', async () => {
    const { client, target, results } = await tunnel();
    const size = 8 * 1024 * 1024;
    const up = randomBytes(size);
    const down = randomBytes(size);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const [atTarget, atClient] = [readAll(target), readAll(client)];
    client.end(up);
    target.end(down);
    assert.equal(sha(await atTarget), sha(up));
    assert.equal(sha(await atClient), sha(down));
    const [near, far] = await results;
    assert.equal(near.clean && far.clean, true, JSON.stringify([near, far]));
    assert.equal(near.sent, size);
    assert.ok(relay.counters().bytes > 2 * size, 'the relay counts what it passed on');
  });

  spliceContract(tunnel);

  test('hostile: forged and replayed preambles, garbage and oversized input are refused', async () => {
    const { a, b } = rendezvous();
    const forged = encodePreamble({ id: a.id, key: randomBytes(32).toString('base64url') });
    assert.equal(await present(forged), 'refused', 'the right ticket id with a forged secret');
    const made = encodePreamble({
      id: randomBytes(16).toString('base64url'),
      key: randomBytes(32).toString('base64url'),
    });
    assert.equal(await present(made), 'refused', 'a ticket the relay never issued');
    // The forged attempt did not spend the genuine ticket: both sides still meet.
    const sideA = await connectRelay('127.0.0.1', relayListener.splicePort, a);
    await waitUntil(() => relayListener.handshaking === 0, 'side A at the relay');
    assert.equal(await present(encodePreamble(a)), 'refused', 'a replay while its rendezvous waits');
    const sideB = await connectRelay('127.0.0.1', relayListener.splicePort, b);
    sockets.push(sideA, sideB);
    sideA.write('through');
    const [seen] = (await once(sideB, 'data')) as [Buffer];
    assert.equal(seen.toString(), 'through');
    assert.equal(await present(encodePreamble(a)), 'refused', 'a replayed preamble');
    sideA.destroy();
    assert.equal(
      await present(Buffer.from('GET / HTTP/1.1\r\n\r\n')),
      'refused',
      'neither TLS nor a preamble',
    );
    // Each port speaks one thing: a TLS handshake on the splice port is refused, and a genuine,
    // unspent preamble on the data port goes to TLS, which refuses it (and it stays unspent).
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40, ...randomBytes(64)]);
    assert.equal(await present(hello), 'refused', 'a TLS handshake on the splice port');
    const fresh = rendezvous();
    assert.equal(
      await present(encodePreamble(fresh.a), undefined, relayListener.port),
      'refused',
      'a preamble on the data port',
    );
    const [freshA, freshB] = [
      await connectRelay('127.0.0.1', relayListener.splicePort, fresh.a),
      await connectRelay('127.0.0.1', relayListener.splicePort, fresh.b),
    ];
    sockets.push(freshA, freshB);
    freshB.write('unspent');
    const [heard] = (await once(freshA, 'data')) as [Buffer];
    assert.equal(heard.toString(), 'unspent', 'the ticket shown to the data port still meets');
    freshA.destroy();
    const badMagic = Buffer.concat([Buffer.from('PLXSPLC9'), randomBytes(PREAMBLE_BYTES)]);
    assert.equal(await present(badMagic), 'refused', 'a wrong magic');
    const huge = Buffer.concat([encodePreamble({ id: a.id, key: a.key }), randomBytes(4 * 1024 * 1024)]);
    assert.equal(await present(huge), 'refused', 'a spent ticket followed by 4 MiB');
  });

  test('hostile: the relay splices only between two current members, never for a stranger', () => {
    assert.throws(() => relay.open(A, 'stranger', 1, RELAY), { code: 'SPLICE_REFUSED' });
    assert.throws(() => relay.open('stranger', B, 1, RELAY), { code: 'SPLICE_REFUSED' });
    assert.throws(() => relay.open(A, A, 1, RELAY), { code: 'SPLICE_REFUSED' });
    assert.throws(() => relay.open(A, RELAY, 1, RELAY), { code: 'SPLICE_REFUSED' });
    const { ids } = relay.open(A, B, 1, RELAY);
    assert.throws(
      () => relay.join(C, A, ids),
      { code: 'SPLICE_REFUSED' },
      'a third member cannot take B’s side',
    );
    relay.join(B, A, ids);
    assert.throws(() => relay.join(B, A, ids), { code: 'SPLICE_REFUSED' }, 'joined once only');
    assert.throws(() => relay.open(A, B, 40, RELAY), { name: 'TunnelLimitError' });
  });

  test('hostile: a revoked member is refused, and its splices close at once', async () => {
    const { client, target, results } = await tunnel();
    const pending = rendezvous();
    members.delete(B);
    try {
      assert.equal(await present(encodePreamble(pending.b)), 'refused', 'a revoked side arriving');
      assert.throws(() => relay.open(A, B, 1, RELAY), { code: 'SPLICE_REFUSED' });
      const t0 = Date.now();
      const gone = Promise.all([readAll(client).catch(() => 'reset'), readAll(target).catch(() => 'reset')]);
      relay.drop(B);
      const late = new Promise((r) => setTimeout(() => r('still open after 5 s'), 5000).unref());
      assert.deepEqual(await Promise.race([gone, late]), ['reset', 'reset']);
      assert.ok(Date.now() - t0 < 5000);
      await results;
      await waitUntil(
        () => relay.counters().active === 0 && relay.counters().waiting === 0,
        'nothing left of B',
      );
    } finally {
      members.add(B);
    }
  });

  test('hostile: a side that never comes is given up after the wait, and nothing is kept', async () => {
    const { a } = rendezvous();
    const side = await connectRelay('127.0.0.1', relayListener.splicePort, a);
    // A silent connection (a 'P' and nothing more) is dropped by the pre-handshake deadline.
    const silent = connect({ port: relayListener.splicePort, host: '127.0.0.1' });
    silent.on('error', () => {});
    silent.write('P');
    const t0 = Date.now();
    side.on('error', () => {});
    const closed = Promise.all([side, silent].map((s) => new Promise((r) => s.once('close', r))));
    await Promise.race([
      closed,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('still open')), SPLICE_WAIT_MS + 4000).unref(),
      ),
    ]);
    const took = Date.now() - t0;

    assert.ok(took >= SPLICE_WAIT_MS - 1000 && took < SPLICE_WAIT_MS + 4000, `closed after ${took} ms`);
    await waitUntil(
      () => relay.counters().waiting === 0 && relayListener.handshaking === 0,
      'no rendezvous or handshake left',
    );
  });

  test('hostile: a flood of connections from one address does not keep a member’s splice out', async () => {
    const flood: Socket[] = [];
    try {
      for (let i = 0; i < 1100; i++) {
        const s = connect({ port: relayListener.splicePort, host: '127.0.0.1', localAddress: '127.0.0.2' });
        s.on('error', () => {});
        s.once('connect', () => s.write('P'));
        flood.push(s);
      }
      await Promise.all(flood.map((s) => new Promise((r) => s.once('connect', r).once('close', r))));
      assert.ok(relayListener.handshaking <= 64, `${relayListener.handshaking} held from one address`);
      const { client, target } = await tunnel();
      const got = readAll(target);
      client.end('member');
      assert.equal((await got).toString(), 'member');
      target.end();
    } finally {
      for (const s of flood) s.destroy();
    }
  });

  test('the dialer meets at a relay when neither side can dial the other, and pools what it gets', async () => {
    const conn = { status: 'open', remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1') } as unknown as Connection;
    let splices = 0;
    const dialer = new DataDialer({
      logger,
      // Its data port does not answer, and it cannot dial ours back.
      requestTickets: async () => ({ port: 1, tickets: bListener.issue(A, 1) }),
      requestReverse: async () => {
        throw new Error('no address to dial back');
      },
      requestSplice: async (_c, count) => {
        splices += count;
        return Array.from({ length: count }, () => splicedPair().then(({ a }) => a));
      },
    });
    try {
      assert.equal(
        await dialer.take(B, conn, AbortSignal.timeout(5000)),
        undefined,
        'the first rides the stream',
      );
      await waitUntil(() => dialer.pooled() === 4, 'four spliced connections in the pool');
      assert.equal(dialer.states()[B], 'spliced');
      const data = await dialer.take(B, conn, AbortSignal.timeout(5000));
      assert.equal(data?.spliced, true);
      data?.socket.destroy();
      assert.ok(splices >= 4);
    } finally {
      dialer.stop();
    }
  });

  test('hostile: a relay cannot point members at a third host', () => {
    const relayConn = { remoteAddr: multiaddr('/ip4/10.0.0.1/tcp/4001') } as unknown as Connection;
    const grant = { port: 7000, rendezvous: [], tickets: [] };
    const known = [multiaddr('/ip4/10.0.0.9/tcp/4001')];
    assert.equal(relayAddress(relayConn, { ...grant, host: '192.168.7.7' }, known).host, '10.0.0.1');
    assert.equal(relayAddress(relayConn, { ...grant, host: '10.0.0.9' }, known).host, '10.0.0.9');
    assert.equal(relayAddress(relayConn, grant, known).host, '10.0.0.1');
  });

  test('splice and meet headers are validated', () => {
    assert.deepEqual(spliceRequestOf({ splice: { peer: PEER_A, count: 2 } }), { peer: PEER_A, count: 2 });
    assert.equal(spliceRequestOf({ service: 'x' }), undefined);
    for (const bad of [
      { splice: { peer: PEER_A, count: 9 } },
      { splice: { peer: 'x', count: 1 } },
      { splice: { peer: PEER_A, join: ['short'] } },
      { splice: { peer: PEER_A, count: 1, extra: 1 } },
      { splice: { peer: PEER_A, count: 1 }, more: 1 },
    ])
      assert.throws(() => spliceRequestOf(bad), { code: 'BAD_HEADER' }, JSON.stringify(bad));
    assert.throws(() => meetRequestOf({ meet: { relay: PEER_A, rendezvous: [] } }), { code: 'BAD_HEADER' });
  });
});

/** Polls `cond` every 20 ms for up to 5 s. */
async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
