/**
 * Reading sockets into shared buffers (src/runtime/socket-reader.ts): an accepted
 * socket and a data connection's TLS socket, which Node gives no `onread` option, read into one
 * buffer all the same (no Buffer per read), with every byte in order, bytes that came while no
 * handler was set kept for the next (up to MAX_KEPT_BYTES: past that the socket is destroyed, not
 * buffered without limit), and the end still seen. This is also the test that notices
 * a Node release that no longer lays out what userBufferReader relies on (`shared` false).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import {
  dataEventReader,
  MAX_KEPT_BYTES,
  SharedBufferReader,
  userBufferReader,
} from '../../../src/runtime/socket-reader.ts';
import { connectLocal } from '../../../src/tunnels/local-target.ts';
import { socketPair, tlsPair } from '../../helpers/sockets.ts';

/**
 * Sends `bytes` from `from` and reads them on `to` through userBufferReader, with no handler
 * until some bytes have come: what the handler saw, and the distinct buffers they were in.
 */
async function pass(
  from: Socket,
  to: Socket,
  tls: boolean,
  bytes: Buffer,
): Promise<{ got: Buffer; buffers: Set<ArrayBufferLike>; largest: number; shared: boolean }> {
  const reader = userBufferReader(to, tls);
  to.resume();
  const parts: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let largest = 0;
  const ended = new Promise<void>((r) => to.once('end', () => r()));
  from.write(bytes.subarray(0, 1000));
  // The first bytes arrive while no handler is set: they are kept, and delivered first.
  await new Promise((r) => setTimeout(r, 50));
  reader.set((chunk) => {
    buffers.add(chunk.buffer);
    largest = Math.max(largest, chunk.byteLength);
    parts.push(Buffer.from(chunk));
  });
  from.end(bytes.subarray(1000));
  await ended;
  return { got: Buffer.concat(parts), buffers, largest, shared: reader.shared };
}

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

describe('shared read buffers for sockets Node gives no onread', () => {
  test('an accepted socket reads into one buffer, 64 KiB at a time', async () => {
    const [client, accepted] = await socketPair(servers);
    try {
      const bytes = randomBytes(8 * 1024 * 1024);
      const r = await pass(client, accepted, false, bytes);
      assert.equal(r.shared, true, 'this Node lets an accepted socket read into a user buffer');
      assert.ok(r.got.equals(bytes), 'every byte, in order');
      // The kept first bytes were copied (a buffer of their own); all others in the shared one.
      assert.ok(r.buffers.size <= 2, `${r.buffers.size} buffers`);
      assert.ok(r.largest <= 64 * 1024);
    } finally {
      client.destroy();
      accepted.destroy();
    }
  });

  test("a data connection's TLS socket decrypts into one buffer, a record at a time", async () => {
    const pair = await tlsPair();
    try {
      const bytes = randomBytes(8 * 1024 * 1024);
      const r = await pass(pair.client, pair.server, true, bytes);
      assert.equal(r.shared, true, 'this Node lets a TLS socket decrypt into a user buffer');
      assert.ok(r.got.equals(bytes), 'every byte, in order');
      assert.ok(r.buffers.size <= 2, `${r.buffers.size} buffers`);
      assert.ok(r.largest <= 16 * 1024, 'one TLS record per call');
    } finally {
      pair.close();
    }
  });
});

describe('bytes that come while nothing reads are kept up to MAX_KEPT_BYTES', () => {
  /** Resolves with the error `socket` is destroyed with, or rejects after `ms`. */
  const destroyedWith = (
    socket: { once(e: 'close', f: () => void): unknown; errored?: Error | null },
    ms = 5000,
  ) =>
    new Promise<Error | null | undefined>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('not destroyed')), ms);
      socket.once('close', () => {
        clearTimeout(t);
        resolve(socket.errored);
      });
    });

  test('an accepted socket: a little under the limit is kept and delivered in order', async () => {
    const [client, accepted] = await socketPair(servers);
    try {
      const reader = userBufferReader(accepted);
      accepted.resume();
      const first = randomBytes(MAX_KEPT_BYTES - 64 * 1024);
      client.write(first);
      await new Promise((r) => setTimeout(r, 300));
      const parts: Buffer[] = [];
      const ended = new Promise((r) => accepted.once('end', r));
      reader.set((c) => parts.push(Buffer.from(c)));
      const rest = randomBytes(4 * MAX_KEPT_BYTES);
      client.end(rest);
      await ended;
      assert.ok(Buffer.concat(parts).equals(Buffer.concat([first, rest])), 'every byte, in order');
    } finally {
      client.destroy();
      accepted.destroy();
    }
  });

  test('an accepted socket and a TLS socket: past the limit, destroyed with KEPT_OVERFLOW', async () => {
    const [client, accepted] = await socketPair(servers);
    const pair = await tlsPair();
    try {
      for (const [from, to, tls] of [
        [client, accepted, false],
        [pair.client, pair.server, true],
      ] as const) {
        userBufferReader(to, tls);
        to.on('error', () => {}); // as every socket the agent reads has (the error is checked below)
        to.resume();
        const closed = destroyedWith(to);
        from.on('error', () => {});
        from.write(randomBytes(3 * MAX_KEPT_BYTES));
        const err = (await closed) as NodeJS.ErrnoException;
        assert.equal(err?.code, 'KEPT_OVERFLOW', `tls: ${tls}`);
        assert.match(err.message, /nothing was reading this connection/);
      }
    } finally {
      client.destroy();
      accepted.destroy();
      pair.close();
    }
  });

  test('a target socket (connectLocal): a server that talks to nobody past the limit is cut', async () => {
    const server = createServer((s) => {
      s.on('error', () => {});
      s.write(randomBytes(3 * MAX_KEPT_BYTES));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const reader = new SharedBufferReader();
    const socket = await connectLocal((server.address() as { port: number }).port, reader);
    const err = (await destroyedWith(socket)) as NodeJS.ErrnoException;
    assert.equal(err?.code, 'KEPT_OVERFLOW');
  });

  test('data events (the fallback): past the limit, destroyed with KEPT_OVERFLOW', async () => {
    const stream = new PassThrough();
    stream.on('error', () => {});
    const reader = dataEventReader(stream);
    const closed = destroyedWith(stream);
    for (let i = 0; i < 3 && !stream.destroyed; i++) stream.write(randomBytes(MAX_KEPT_BYTES / 2));
    stream.write(randomBytes(MAX_KEPT_BYTES));
    const err = (await closed) as NodeJS.ErrnoException;
    assert.equal(err?.code, 'KEPT_OVERFLOW');
    reader.set(undefined);
  });
});
