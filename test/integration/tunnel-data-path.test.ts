/**
 * Tunnel data connections (docs/tunnels.md, data connections), in-process over real loopback
 * sockets: the data listener admits a TLS 1.3 handshake only with a fresh ticket as its PSK,
 * once, and keeps strangers (a flood from one address, a silent connection) from crowding out
 * members; spliceData keeps splice's semantics (half-close both ways, resets passed on, a cut
 * never taken for an end, bounded buffering); the dialer falls back when a peer's data port
 * cannot be reached, and a pooled connection never buffers what the server sends unasked.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { Connection } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import pino from 'pino';
import type { SpliceResult } from '../../src/tunnels/carriers/carrier.ts';
import { dial } from '../../src/tunnels/carriers/data/dial.ts';
import { DataDialer } from '../../src/tunnels/carriers/data/dialer.ts';
import { DataListener, type RedeemedTicket, sourceKey } from '../../src/tunnels/carriers/data/listener.ts';
import { dataConnection, spliceData } from '../../src/tunnels/carriers/data/splice.ts';
import type { DataTicket } from '../../src/tunnels/carriers/data/tickets.ts';
import { clientTlsOptions } from '../../src/tunnels/carriers/data/tls.ts';
import { InProcessEnd, type LocalSocket } from '../../src/tunnels/in-process.ts';
import { readAll, socketPair } from '../helpers/sockets.ts';
import { spliceContract } from '../helpers/splice-contract.ts';

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

/** A TLS client to 127.0.0.1:`port` keyed by `ticket` (or an ordinary TLS client without one). */
function tlsClient(port: number, ticket?: DataTicket, localAddress?: string): TLSSocket {
  const keyed = ticket ? clientTlsOptions(ticket.id, Buffer.from(ticket.key, 'base64url')) : {};
  const s = tlsConnect({
    port,
    host: '127.0.0.1',
    ...(localAddress ? { localAddress } : {}),
    rejectUnauthorized: false,
    allowHalfOpen: true,
    ...keyed,
  } as ConnectionOptions);
  s.on('error', () => {});
  return s;
}

/**
 * A TCP relay between a client and the listener, to play someone on the path: `cut()` ends the
 * client's side with a plain FIN, `tamper()` flips a bit in the next bytes toward the client.
 */
async function pathBetween(port: number, servers: Server[]) {
  let toClient: Socket | undefined;
  let flip = false;
  const server = createServer({ allowHalfOpen: true }, (a) => {
    toClient = a;
    const b = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    // Resets pass through like on a real path.
    a.on('error', () => b.resetAndDestroy());
    b.on('error', () => a.resetAndDestroy());
    sockets.push(a, b);
    a.pipe(b);
    b.on('data', (d: Buffer) => {
      if (flip) {
        flip = false;
        d = Buffer.from(d);
        d[d.length - 1] ^= 1;
      }
      if (!a.write(d)) {
        b.pause();
        a.once('drain', () => b.resume());
      }
    });
    b.on('end', () => a.end());
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    cut: () => toClient?.end(),
    tamper: () => {
      flip = true;
    },
  };
}

describe('tunnel data path', () => {
  const servers: Server[] = [];
  let listener: DataListener;
  const redeemed: { ticket: RedeemedTicket; socket: TLSSocket; raw: Socket }[] = [];
  let onRedeem: ((r: { ticket: RedeemedTicket; socket: TLSSocket; raw: Socket }) => void) | undefined;

  before(async () => {
    listener = new DataListener(
      { host: '127.0.0.1', port: 0 },
      {
        logger,
        onConnection: (ticket, socket, raw) => {
          if (finished) return void socket.destroy();
          const r = { ticket, socket, raw };
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

  /** Handshakes with `ticket` (or none); resolves 'redeemed' or 'refused'. */
  function tryHandshake(ticket?: DataTicket, localAddress?: string): Promise<'redeemed' | 'refused'> {
    return new Promise((resolve) => {
      const s = tlsClient(listener.port, ticket, localAddress);
      onRedeem = () => {
        onRedeem = undefined;
        s.destroy();
        resolve('redeemed');
      };
      s.once('close', () => resolve('refused'));
    });
  }

  test('a ticket keys one TLS 1.3 handshake, once; strangers, junk and wrong keys are refused', async () => {
    const [t] = listener.issue(PEER, 1);
    assert.equal(await tryHandshake(t), 'redeemed');
    assert.equal(redeemed.at(-1)?.ticket.peer, PEER);
    assert.equal(redeemed.at(-1)?.socket.getProtocol(), 'TLSv1.3');
    assert.equal(await tryHandshake(t), 'refused', 'a replayed ticket is refused');
    assert.equal(await tryHandshake(), 'refused', "a stranger's TLS handshake without a ticket");
    const [w] = listener.issue(PEER, 1);
    const wrongKey = { id: w.id, key: Buffer.alloc(32, 1).toString('base64url') };
    assert.equal(await tryHandshake(wrongKey), 'refused', 'the right id with a wrong key');
    assert.equal(await tryHandshake(w), 'refused', 'a ticket tried with a wrong key is spent');
    const junk = await new Promise<string>((resolve) => {
      const s = connect({ port: listener.port, host: '127.0.0.1' });
      s.on('error', () => {});
      s.once('close', () => resolve('refused'));
      s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    assert.equal(junk, 'refused');
    const [u] = listener.issue(PEER, 1);
    listener.forget(PEER);
    assert.equal(await tryHandshake(u), 'refused', 'forgotten with its peer');
  });

  test('a flood of idle connections from one address does not keep members out', async () => {
    const flood: Socket[] = [];
    try {
      for (let i = 0; i < 1100; i++) {
        const s = connect({ port: listener.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
        s.on('error', () => {});
        flood.push(s);
      }
      await Promise.all(
        flood.map(
          (s) => new Promise((r) => (s.connecting ? s.once('connect', r).once('close', r) : r(null))),
        ),
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(listener.handshaking <= 64, `${listener.handshaking} handshakes held from one address`);
      const tickets = listener.issue(PEER, 20);
      const outcomes = await Promise.all(tickets.map((t) => tryHandshakeQueued(t)));
      assert.deepEqual(
        outcomes,
        tickets.map(() => 'redeemed'),
      );
    } finally {
      for (const s of flood) s.destroy();
    }
  });

  /** Like tryHandshake, for several at once. */
  function tryHandshakeQueued(ticket: DataTicket): Promise<'redeemed' | 'refused'> {
    return new Promise((resolve) => {
      const s = tlsClient(listener.port, ticket);
      s.once('secureConnect', () => {
        s.destroy();
        resolve('redeemed');
      });
      s.once('close', () => resolve('refused'));
    });
  }

  test('a connection that does not finish its handshake is dropped after 5 s', async () => {
    const s = connect({ port: listener.port, host: '127.0.0.1' });
    s.on('error', () => {});
    const started = Date.now();
    await new Promise((r) => s.once('close', r));
    const took = Date.now() - started;
    assert.ok(took >= 4500 && took < 9000, `dropped after ${took} ms`);
  });

  test('sources are counted per IPv4 address and per IPv6 /64', () => {
    assert.equal(sourceKey('10.0.0.1'), '10.0.0.1');
    assert.equal(sourceKey('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:2:ffff:1:2:3'));
    assert.notEqual(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:3::1'));
  });

  test('tickets per peer are limited', () => {
    assert.throws(() => listener.issue('greedy', 2000), { name: 'TunnelLimitError' });
  });

  /**
   * client ⇄ spliceData ⇄ TLS data connection (through a path) ⇄ spliceData ⇄ target; with
   * `inProcess`, the target is an in-process service's end (src/tunnels/in-process.ts).
   */
  async function tunnel(inProcess = false): Promise<{
    client: Socket;
    target: LocalSocket;
    locals: LocalSocket[];
    results: Promise<SpliceResult[]>;
    path: Awaited<ReturnType<typeof pathBetween>>;
  }> {
    const [client, near] = await trackedPair(servers);
    const [farLocal, target] = inProcess ? InProcessEnd.pair() : await trackedPair(servers);
    const path = await pathBetween(listener.port, servers);
    const [t] = listener.issue(PEER, 1);
    const accepted = new Promise<{ socket: TLSSocket; raw: Socket }>((r) => {
      onRedeem = (x) => {
        onRedeem = undefined;
        r(x);
      };
    });
    const raw = connect({ port: path.port, host: '127.0.0.1', allowHalfOpen: true });
    raw.on('error', () => {});
    sockets.push(raw);
    await new Promise((r) => raw.once('connect', r));
    const a = tlsConnect({ socket: raw, ...clientTlsOptions(t.id, Buffer.from(t.key, 'base64url')) });
    a.on('error', () => {});
    await new Promise((r) => a.once('secureConnect', r));
    const b = await accepted;
    b.socket.on('error', () => {});
    const results = Promise.all([
      spliceData(near, dataConnection(a, raw)),
      spliceData(farLocal, dataConnection(b.socket, b.raw)),
    ]);
    return { client, target, locals: [near, farLocal], results, path };
  }

  spliceContract(tunnel);
  describe('to an in-process service', () => {
    spliceContract(() => tunnel(true));
  });

  test('a data connection cut with a plain FIN (no FIN frame) resets the client, never ends it cleanly', async () => {
    const { client, target, results, path } = await tunnel();
    const got = readAll(client);
    target.write('partial');
    await new Promise((r) => setTimeout(r, 50));
    // Someone on the path ends the TCP connection: the bytes so far arrived, the end did not.
    path.cut();
    await assert.rejects(got, { code: 'ECONNRESET' });
    const [near] = await results;
    assert.equal(near.clean, false);
    assert.match(near.error ?? '', /FIN frame/);
  });

  test('a tampered byte on the wire resets both ends', async () => {
    const { client, target, results, path } = await tunnel();
    const got = readAll(client);
    path.tamper();
    target.write('secret');
    await assert.rejects(got, { code: 'ECONNRESET' });
    const [near] = await results;
    assert.match(near.error ?? '', /decrypt|bad record mac|stream/i);
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
      assert.equal(data.socket.getProtocol(), 'TLSv1.3');
      data.socket.destroy();
      assert.equal(requests, 1, 'tickets are fetched in batches');

      // A server that talks to an idle pooled connection: it is closed, not buffered.
      for (let i = 0; i < 50 && dialer.pooled() < 4; i++) await new Promise((r) => setTimeout(r, 20));
      const far = redeemed.at(-1)?.socket;
      assert.ok(far);
      far.write(Buffer.alloc(4 * 1024 * 1024));
      for (let i = 0; i < 100 && dialer.pooled() === 4; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(dialer.pooled(), 3, 'the talked-to connection left the pool');

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

  test('a peer whose data port cannot be dialled dials ours back, into the pool (reverse connection)', async () => {
    const conn = { status: 'open', remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1') } as unknown as Connection;
    const farEnds: { socket: TLSSocket; raw: Socket }[] = [];
    let dialer: DataDialer | undefined;
    // Our own listener: the far peer dials it with the reverse tickets we send it.
    const mine = new DataListener(
      { host: '127.0.0.1', port: 0 },
      {
        logger,
        onConnection: (ticket, socket, raw) => {
          assert.equal(ticket.reverse, true);
          dialer?.adopt(ticket.peer, dataConnection(socket, raw));
        },
      },
    );
    await mine.start();
    let asked = 0;
    dialer = new DataDialer({
      logger,
      // Its data port does not answer (nothing listens on port 1).
      requestTickets: async () => ({ port: 1, tickets: listener.issue('dialer', 1) }),
      // The far peer agrees and dials back, one connection per ticket.
      requestReverse: async (_c, count) => {
        asked += count;
        // Dials still under way when the test ends are cut by its teardown.
        for (const t of mine.issue('r', count, true))
          void dial('127.0.0.1', mine.port, t, AbortSignal.timeout(5000)).then(
            (d) => farEnds.push({ socket: d.socket, raw: d.raw }),
            () => {},
          );
      },
    });
    try {
      assert.equal(await dialer.take('r', conn, AbortSignal.timeout(5000)), undefined);
      for (let i = 0; i < 150 && dialer.pooled() < 4; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(dialer.states().r, 'reverse');
      assert.equal(dialer.pooled(), 4);
      const data = await dialer.take('r', conn, AbortSignal.timeout(5000));
      assert.ok(data && !data.socket.destroyed);
      // The pool asks for more as it is used, and a tunnel finding it empty waits for one.
      const more = await Promise.all(
        Array.from({ length: 6 }, () => dialer?.take('r', conn, AbortSignal.timeout(5000))),
      );
      assert.ok(
        more.every((d) => d && !d.socket.destroyed),
        'each tunnel got a dialled-back connection',
      );
      assert.ok(asked >= 10, `${asked} asked for`);
      for (const d of [data, ...more]) d?.socket.destroy();

      // A peer that refuses to dial back: the data path is given up for a while.
      const refusing = new DataDialer({
        logger,
        requestTickets: async () => ({ port: 1, tickets: listener.issue('dialer', 1) }),
        requestReverse: async () => {
          throw new Error('refused');
        },
      });
      assert.equal(await refusing.take('s', conn, AbortSignal.timeout(5000)), undefined);
      for (let i = 0; i < 150 && refusing.states().s !== 'unreachable'; i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(refusing.states().s, 'unreachable');
      refusing.stop();
    } finally {
      dialer.stop();
      mine.stop();
      for (const f of farEnds) f.raw.destroy();
    }
  });
});
