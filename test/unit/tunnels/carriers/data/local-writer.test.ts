/**
 * The receiving side of a data connection (src/tunnels/carriers/data/local-writer.ts): records
 * handed over in one reused buffer (as the TLS socket's shared read buffer gives them) reach the
 * local end intact and in order, whether it is a socket or an in-process service's end, which
 * keeps the very Buffers it is written (so its staging buffers must never be reused).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, describe, test } from 'node:test';
import { LocalWriter } from '../../../../../src/tunnels/carriers/data/local-writer.ts';
import { InProcessEnd } from '../../../../../src/tunnels/in-process.ts';
import { readAll, socketPair } from '../../../../helpers/sockets.ts';

/** Pushes `source` through a LocalWriter into `local` in 16 KiB records from one reused buffer. */
async function pushAll(local: Duplex, source: Buffer): Promise<void> {
  let resumed: (() => void) | undefined;
  let paused = false;
  const writer = new LocalWriter(local, (go) => {
    paused = !go;
    if (go) resumed?.();
  });
  const record = Buffer.alloc(16 * 1024);
  for (let at = 0, i = 1; at < source.length; i++) {
    const n = Math.min(i % 5 === 0 ? 100 : record.length, source.length - at);
    source.copy(record, 0, at, at + n);
    writer.push(record.subarray(0, n));
    // The record is the writer's only during the call: overwrite it, as the next read would.
    record.fill(0xee);
    at += n;
    // A TCP read's worth of records, then the turn of the event loop ends.
    if (i % 16 === 0) {
      writer.flush();
      if (paused) await new Promise<void>((r) => (resumed = r));
      else await new Promise((r) => setImmediate(r));
    }
  }
  writer.end();
}

describe('data connection local writer', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  test('into a socket: every byte, in order', async () => {
    const [ours, theirs] = await socketPair(servers);
    try {
      const source = randomBytes(8 * 1024 * 1024);
      const got = readAll(theirs);
      await pushAll(ours, source);
      assert.ok((await got).equals(source));
    } finally {
      ours.destroy();
      theirs.destroy();
    }
  });

  test('into an in-process end, which keeps the Buffers it reads: every byte, in order', async () => {
    const [ours, theirs] = InProcessEnd.pair();
    const source = randomBytes(8 * 1024 * 1024);
    // readAll holds every chunk it is given until the end: a staging buffer reused under it
    // would show as overwritten bytes.
    const got = readAll(theirs);
    await pushAll(ours, source);
    assert.ok((await got).equals(source));
  });

  test('into an in-process end whose reader consumes, holding each chunk until done: intact, buffers reused', async () => {
    const [ours, theirs] = InProcessEnd.pair();
    const source = randomBytes(8 * 1024 * 1024);
    const held: Buffer[] = [];
    const arrays = new Set<ArrayBufferLike>();
    const got: Buffer[] = [];
    theirs.consume((chunk, done) => {
      // Checked (copied) only when done is called: a buffer reused before would show here.
      held.push(chunk);
      arrays.add(chunk.buffer);
      setImmediate(() => {
        got.push(Buffer.from(held.shift() as Buffer));
        done();
      });
    });
    const ended = once(theirs, 'end');
    theirs.resume();
    await pushAll(ours, source);
    await ended;
    assert.ok(Buffer.concat(got).equals(source));
    // Small pieces go in Buffers of their own (Node's 8 KiB pool); staged bytes in a few reused ones.
    const large = [...arrays].filter((b) => b.byteLength > 8192).length;
    assert.ok(large <= 4, `${large} staging buffers for 8 MiB`);
  });
});
