/**
 * Reused data connections (docs/tunnels.md, data connections), in-process over real loopback
 * sockets: when both ends agree (`reuse` in the header and echoed in the reply), the FIN frames
 * end a tunnel but not its TLS connection, which then carries the next tunnel with no handshake.
 * The splice contract (half-close, resets, backpressure) holds in that mode too; a reset still
 * kills the connection; the server serves each reused tunnel with the same checks as the first;
 * and an opener that does not ask (an older agent) gets a connection that closes as before.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import type { Connection } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import pino from 'pino';
import { dial } from '../../src/tunnels/carriers/data/dial.ts';
import { DataDialer } from '../../src/tunnels/carriers/data/dialer.ts';
import { endFrames, FrameReader, writeFrame } from '../../src/tunnels/carriers/data/frames.ts';
import { DataListener } from '../../src/tunnels/carriers/data/listener.ts';
import { serveData } from '../../src/tunnels/carriers/data/serve.ts';
import {
  type DataConnection,
  dataConnection,
  readFirstFrame,
  spliceData,
} from '../../src/tunnels/carriers/data/splice.ts';
import { TunnelLedger } from '../../src/tunnels/ledger.ts';
import { readAll, socketPair } from '../helpers/sockets.ts';
import { spliceContract } from '../helpers/splice-contract.ts';

const logger = pino({ level: 'silent' });
const PEER = '12D3KooWTestPeer';

describe('reused tunnel data connections', () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  let listener: DataListener;
  let onRedeem: ((socket: TLSSocket, raw: Socket) => void) | undefined;
  let handshakes = 0;

  before(async () => {
    listener = new DataListener(
      { host: '127.0.0.1', port: 0 },
      {
        logger,
        onConnection: (_t, socket, raw) => {
          handshakes++;
          sockets.push(raw);
          onRedeem?.(socket, raw);
        },
      },
    );
    await listener.start();
  });
  after(() => {
    listener.stop();
    for (const s of servers) s.close();
    for (const s of sockets) s.destroy();
  });

  async function pair(): Promise<[Socket, Socket]> {
    const p = await socketPair(servers);
    for (const s of p) {
      s.on('error', () => {});
      sockets.push(s);
    }
    return p;
  }

  /** Both ends of one TLS data connection, keyed by a fresh ticket. */
  async function connection(): Promise<{ near: DataConnection; far: DataConnection }> {
    const [t] = listener.issue(PEER, 1);
    const accepted = new Promise<DataConnection>((r) => {
      onRedeem = (socket, raw) => {
        onRedeem = undefined;
        socket.on('error', () => {});
        r(dataConnection(socket, raw));
      };
    });
    const near = await dial('127.0.0.1', listener.port, t, AbortSignal.timeout(5000));
    sockets.push(near.raw);
    const far = await accepted;
    sockets.push(far.raw);
    return { near, far };
  }

  /** client ⇄ spliceData(reuse) ⇄ data connection ⇄ spliceData(reuse) ⇄ target. */
  async function tunnelOn(conn: { near: DataConnection; far: DataConnection }) {
    const [client, nearLocal] = await pair();
    const [farLocal, target] = await pair();
    const results = Promise.all([
      spliceData(nearLocal, conn.near, { reuse: true }),
      spliceData(farLocal, conn.far, { reuse: true }),
    ]);
    return { client, target, locals: [nearLocal, farLocal], results };
  }

  spliceContract(async () => tunnelOn(await connection()));

  test('a second tunnel rides the same TLS connection once both FIN frames crossed', async () => {
    const conn = await connection();
    for (const word of ['first', 'second']) {
      const { client, target, results } = await tunnelOn(conn);
      const atTarget = readAll(target);
      client.end(`${word} request`);
      assert.equal((await atTarget).toString(), `${word} request`);
      const atClient = readAll(client);
      target.end(`${word} answer`);
      assert.equal((await atClient).toString(), `${word} answer`);
      const [near, far] = await results;
      assert.deepEqual([near.clean, near.reusable, far.clean, far.reusable], [true, true, true, true]);
      assert.equal(conn.near.socket.destroyed || conn.far.socket.destroyed, false);
      conn.near.frames = new FrameReader();
      conn.far.frames = new FrameReader();
    }
  });

  test('a reset during a tunnel still kills its connection: it is never reused', async () => {
    const conn = await connection();
    const { client, target, results } = await tunnelOn(conn);
    const got = readAll(client);
    target.write('partial');
    await new Promise((r) => setTimeout(r, 20));
    target.resetAndDestroy();
    await assert.rejects(got, { code: 'ECONNRESET' });
    const [near, far] = await results;
    assert.equal(near.reusable || far.reusable, false);
  });

  test('a given-back connection returns to the pool, and takes above the low-water mark open none', async () => {
    const conn = { status: 'open', remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1') } as unknown as Connection;
    const dialer = new DataDialer({
      logger,
      requestTickets: async (_c, count) => ({
        port: listener.port,
        tickets: listener.issue('dialer', count),
      }),
    });
    try {
      const start = handshakes;
      assert.equal(await dialer.take('p', conn, AbortSignal.timeout(5000)), undefined);
      // The listener counts a handshake when the client's Finished reaches it, which on a loaded
      // machine may be a moment after the dialer pooled that connection: wait for both ends.
      for (let i = 0; i < 100 && (dialer.pooled() < 4 || handshakes - start < 4); i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(dialer.pooled(), 4);
      assert.equal(handshakes - start, 4);
      const before = handshakes;
      for (let i = 0; i < 10; i++) {
        const data = await dialer.take('p', conn, AbortSignal.timeout(5000));
        assert.ok(data && !data.socket.destroyed);
        dialer.giveBack('p', data);
      }
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(handshakes - before, 0, 'no TLS handshake for tunnels that gave their connection back');
      assert.equal(dialer.pooled(), 4);
    } finally {
      dialer.stop();
    }
  });

  test('the server serves tunnel after tunnel on a connection whose opener asks for reuse, one otherwise', async () => {
    const echo = await new Promise<number>((resolve) => {
      const s = createServer({ allowHalfOpen: true }, (c) => c.pipe(c));
      servers.push(s);
      s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port));
    });
    const ledger = new TunnelLedger({ maxPerPeer: 8, maxTotal: 16 }, logger);
    const ctx = { ledger, logger, targetFor: () => echo };
    /** One tunnel from the opener's end: header, one byte each way, FIN; the reply header. */
    const oneTunnel = async (near: DataConnection, header: object) => {
      writeFrame(near.socket, Buffer.from(JSON.stringify(header)));
      writeFrame(near.socket, Buffer.from('x'));
      endFrames(near.socket, true);
      const { value, rest } = await readFirstFrame(near, AbortSignal.timeout(5000), 1024);
      const pieces = [...rest];
      near.reader.set((chunk) => pieces.push(...near.frames.push(chunk)));
      near.socket.resume();
      for (let i = 0; i < 100 && !near.frames.finished; i++) await new Promise((r) => setTimeout(r, 10));
      near.reader.set(undefined);
      const bytes = pieces.flatMap((p) => ('bytes' in p ? [p.bytes.toString()] : []));
      near.frames = new FrameReader();
      return { value, echoed: bytes.join(''), finished: pieces.some((p) => 'fin' in p) };
    };

    const reused = await connection();
    const served = serveData({ peer: PEER, reverse: false }, reused.far, ctx);
    for (let i = 0; i < 3; i++) {
      const r = await oneTunnel(reused.near, { service: 'echo', reuse: true });
      assert.deepEqual(r, { value: { ok: true, reuse: true }, echoed: 'x', finished: true });
    }
    assert.equal(reused.near.socket.destroyed, false);
    // Each reused tunnel is checked like the first: a bad header is refused, and ends the reuse.
    writeFrame(reused.near.socket, Buffer.from(JSON.stringify({ nonsense: true, reuse: true })));
    const { value } = await readFirstFrame(reused.near, AbortSignal.timeout(5000), 1024);
    assert.equal((value as { code: string }).code, 'BAD_HEADER');
    await served;
    assert.equal(ledger.counts.inbound, 0);

    // An opener that does not ask (an agent that predates reuse): one tunnel, then the TLS end.
    const once = await connection();
    const ended = new Promise((r) => once.near.socket.once('end', r));
    void serveData({ peer: PEER, reverse: false }, once.far, ctx);
    const r = await oneTunnel(once.near, { service: 'echo' });
    assert.deepEqual(r, { value: { ok: true }, echoed: 'x', finished: true });
    once.near.socket.resume();
    await ended;
  });
});
