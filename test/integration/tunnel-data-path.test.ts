/**
 * Tunnel data connections (docs/tunnels.md, data connections), in-process over real loopback
 * sockets: the data listener admits a connection only with a fresh ticket, once; spliceData
 * keeps splice's semantics (half-close both ways, resets passed on, a cut never taken for an
 * end, bounded buffering); the dialer falls back when a peer's data port cannot be reached.
 */
import assert from 'node:assert/strict';
import { connect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Connection } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import pino from 'pino';
import type { SpliceResult } from '../../src/tunnels/carriers/carrier.ts';
import { DataDialer } from '../../src/tunnels/carriers/data/dialer.ts';
import { DataListener, type RedeemedTicket } from '../../src/tunnels/carriers/data/listener.ts';
import {
  deriveRecordKeys,
  RecordOpener,
  RecordSealer,
} from '../../src/tunnels/carriers/data/record-encryption.ts';
import { dataEventReader, SharedBufferReader } from '../../src/tunnels/carriers/data/socket-reader.ts';
import { type DataConnection, spliceData } from '../../src/tunnels/carriers/data/splice.ts';
import { DATA_MAGIC } from '../../src/tunnels/carriers/data/tickets.ts';
import { readAll, socketPair, writeUntilHeldBack } from '../helpers/sockets.ts';

const logger = pino({ level: 'silent' });
const PEER = '12D3KooWTestPeer';
const sockets: Socket[] = [];

/** A loopback socket pair whose ends are destroyed after the suite. */
async function trackedPair(servers: Server[]): Promise<[Socket, Socket]> {
  const pair = await socketPair(servers);
  for (const s of pair) {
    s.on('error', () => {});
    sockets.push(s);
  }
  return pair;
}

describe('tunnel data path', () => {
  const servers: Server[] = [];
  let listener: DataListener;
  const redeemed: { ticket: RedeemedTicket; socket: Socket; rest: Buffer }[] = [];
  let onRedeem: ((r: { ticket: RedeemedTicket; socket: Socket; rest: Buffer }) => void) | undefined;

  before(async () => {
    listener = new DataListener(
      { host: '127.0.0.1', port: 0 },
      {
        logger,
        onConnection: (ticket, socket, rest) => {
          if (finished) return void socket.destroy();
          const r = { ticket, socket, rest };
          redeemed.push(r);
          onRedeem?.(r);
        },
      },
    );
    await listener.start();
  });
  let finished = false;
  after(async () => {
    finished = true;
    listener.stop();
    for (const s of servers) s.close();
    for (const r of redeemed) r.socket.destroy();
    for (const s of sockets) s.destroy();
  });

  /** Connects with `preamble`; resolves 'redeemed' or 'refused' (reset or closed by the listener). */
  function tryPreamble(preamble: Buffer): Promise<'redeemed' | 'refused'> {
    return new Promise((resolve) => {
      const s = connect({ port: listener.port, host: '127.0.0.1' });
      s.on('error', () => {});
      onRedeem = () => {
        onRedeem = undefined;
        s.destroy();
        resolve('redeemed');
      };
      s.once('close', () => resolve('refused'));
      s.write(preamble);
    });
  }
  const preambleOf = (id: string) => Buffer.concat([DATA_MAGIC, Buffer.from(id, 'base64url')]);

  test('a ticket admits one connection, once; junk and unknown ids are refused', async () => {
    const [t] = listener.issue(PEER, 1);
    assert.equal(await tryPreamble(preambleOf(t.id)), 'redeemed');
    assert.equal(redeemed.at(-1)?.ticket.peer, PEER);
    assert.equal(await tryPreamble(preambleOf(t.id)), 'refused', 'a ticket is single-use');
    const [u] = listener.issue(PEER, 1);
    assert.equal(
      await tryPreamble(Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n'), Buffer.alloc(8)])),
      'refused',
    );
    assert.equal(await tryPreamble(preambleOf(Buffer.alloc(16).toString('base64url'))), 'refused');
    listener.forget(PEER);
    assert.equal(await tryPreamble(preambleOf(u.id)), 'refused', 'forgotten with its peer');
  });

  test('tickets per peer are limited', () => {
    assert.throws(() => listener.issue('greedy', 2000), { name: 'TunnelLimitError' });
  });

  /** client ⇄ spliceData ⇄ data connection ⇄ spliceData ⇄ target, keyed like a real ticket. */
  async function tunnel(): Promise<{
    client: Socket;
    target: Socket;
    results: Promise<SpliceResult[]>;
    wire: [Socket, Socket];
  }> {
    const [client, near] = await trackedPair(servers);
    const [farLocal, target] = await trackedPair(servers);
    const [a, b] = await trackedPair(servers);
    const secret = Buffer.alloc(32, 9);
    const conn = (socket: Socket, role: 'client' | 'server'): DataConnection => {
      const k = deriveRecordKeys(secret, role);
      return {
        socket,
        reader: dataEventReader(socket),
        sealer: new RecordSealer(k.send),
        opener: new RecordOpener(k.receive),
      };
    };
    const results = Promise.all([
      spliceData(near, conn(a, 'client')),
      spliceData(farLocal, conn(b, 'server')),
    ]);
    return { client, target, results, wire: [a, b] };
  }

  test('half-close: each FIN passes through while the other direction keeps flowing', async () => {
    const { client, target, results } = await tunnel();
    const atTarget = readAll(target);
    client.end('request');
    assert.equal((await atTarget).toString(), 'request');
    const atClient = readAll(client);
    target.end('answer');
    assert.equal((await atClient).toString(), 'answer');
    const [near, far] = await results;
    assert.equal(near.clean && far.clean, true, JSON.stringify([near, far]));
    assert.equal(near.sent, 'request'.length);
    assert.equal(near.received, 'answer'.length);
  });

  test('a reset on one side reaches the other as a reset', async () => {
    const { client, target, results } = await tunnel();
    const got = readAll(client);
    target.write(Buffer.alloc(1024 * 1024));
    await new Promise((r) => setTimeout(r, 50));
    target.resetAndDestroy();
    await assert.rejects(got, { code: 'ECONNRESET' });
    const [near, far] = await results;
    assert.equal(near.clean || far.clean, false);
  });

  test('a data connection cut with a plain FIN (no FIN record) resets the client, never ends it cleanly', async () => {
    const { client, target, results, wire } = await tunnel();
    const got = readAll(client);
    target.write('partial');
    await new Promise((r) => setTimeout(r, 50));
    // Someone on the path ends the TCP connection: the bytes so far arrived, the end did not.
    wire[1].end();
    await assert.rejects(got, { code: 'ECONNRESET' });
    const [near] = await results;
    assert.equal(near.clean, false);
    assert.match(near.error ?? '', /FIN record/);
  });

  test('a tampered byte on the wire resets both ends', async () => {
    const { client, target, results, wire } = await tunnel();
    const got = readAll(client);
    // Flip bits in what the far end sends: take over its socket's write.
    const real = wire[1].write.bind(wire[1]);
    wire[1].write = ((chunk: Buffer, ...rest: never[]) =>
      real(
        Buffer.from(chunk).map((x, i) => (i === 5 ? x ^ 1 : x)) as Buffer,
        ...rest,
      )) as (typeof wire)[1]['write'];
    target.write('secret');
    await assert.rejects(got, { code: 'ECONNRESET' });
    const [near] = await results;
    assert.match(near.error ?? '', /authenticate/);
  });

  test('a slow reader holds back the writer instead of buffering everything', async () => {
    const { client, target, results } = await tunnel();
    client.pause();
    const written = await writeUntilHeldBack(target, 512);
    assert.ok(written < 512 * 1024 * 1024, `the writer was held back after ${written} bytes`);
    const got = readAll(client);
    client.resume();
    target.end();
    assert.equal((await got).length, written);
    client.end();
    const [near, far] = await results;
    assert.equal(near.clean && far.clean, true);
  });

  test('the dialer uses a ready connection once the data port worked, and falls back when it does not', async () => {
    const conn = { status: 'open', remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1') } as unknown as Connection;
    let requests = 0;
    const dialer = new DataDialer({
      logger,
      requestTickets: async (_c, count) => {
        requests++;
        return { port: listener.port, tickets: listener.issue('dialer', count) };
      },
    });
    try {
      // Unknown yet: the first tunnel is not kept waiting; connections are made in the background.
      assert.equal(await dialer.take('p', conn, AbortSignal.timeout(5000)), undefined);
      for (let i = 0; i < 50 && dialer.pooled() < 4; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(dialer.pooled(), 4);
      assert.equal(dialer.states().p, 'ok');
      const data = await dialer.take('p', conn, AbortSignal.timeout(5000));
      assert.ok(data && !data.socket.destroyed);
      assert.ok(data.reader instanceof SharedBufferReader);
      data.socket.destroy();
      assert.equal(requests, 1, 'tickets are fetched in batches');

      // A peer whose data port does not answer: tunnels fall back, and it is not tried again soon.
      const closed = new DataDialer({
        logger,
        requestTickets: async () => ({ port: 1, tickets: listener.issue('dialer', 1) }),
      });
      assert.equal(await closed.take('q', conn, AbortSignal.timeout(5000)), undefined);
      for (let i = 0; i < 50 && closed.states().q !== 'unreachable'; i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(closed.states().q, 'unreachable');
      assert.equal(await closed.take('q', conn, AbortSignal.timeout(5000)), undefined);
      closed.stop();
    } finally {
      dialer.stop();
    }
  });
});
