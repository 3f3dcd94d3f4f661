/**
 * Reading sockets into shared buffers (src/runtime/socket-reader.ts): an accepted
 * socket and a data connection's TLS socket, which Node gives no `onread` option, read into one
 * buffer all the same (no Buffer per read), with every byte in order, bytes that came while no
 * handler was set kept for the next, and the end still seen. This is also the test that notices
 * a Node release that no longer lays out what userBufferReader relies on (`shared` false).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { userBufferReader } from '../../../src/runtime/socket-reader.ts';
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

describe('shared read buffers for sockets Node gives no onread', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

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
