/**
 * The sending side of a data connection (src/tunnels/carriers/data/frame-writer.ts), over a real
 * TLS 1.3 pair on loopback: chunks handed over in one reused buffer (as socket-reader.ts does)
 * arrive intact and in order, however they were staged; the local side is paused while the far
 * end does not read, and the FIN frame comes after everything staged.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { FrameWriter, STAGE_BYTES } from '../../../../../src/tunnels/carriers/data/frame-writer.ts';
import { FrameReader } from '../../../../../src/tunnels/carriers/data/frames.ts';
import { TLS_HIGH_WATER_BYTES } from '../../../../../src/tunnels/carriers/data/tls.ts';
import { tlsPair } from '../../../../helpers/sockets.ts';

/** Collects what the far end reads: the payload bytes in order, and whether the FIN came. */
function collect(server: TLSSocket): { bytes: () => Buffer; fin: Promise<void> } {
  const frames = new FrameReader();
  const parts: Buffer[] = [];
  let finished: () => void = () => {};
  const fin = new Promise<void>((r) => {
    finished = r;
  });
  server.on('data', (chunk: Buffer) => {
    for (const p of frames.push(chunk)) {
      if ('fin' in p) finished();
      else parts.push(Buffer.from(p.bytes));
    }
  });
  return { bytes: () => Buffer.concat(parts), fin };
}

describe('data connection frame writer', () => {
  let pair: Awaited<ReturnType<typeof tlsPair>>;
  before(async () => {
    pair = await tlsPair();
  });
  after(() => pair.close());

  test('chunks from one reused buffer arrive intact and in order, the FIN after them', async () => {
    const { client, server } = pair;
    const got = collect(server);
    server.pause();
    const source = randomBytes(24 * 1024 * 1024);
    const shared = Buffer.alloc(256 * 1024);
    let paused = false;
    let pauses = 0;
    let resumed: (() => void) | undefined;
    const writer = new FrameWriter(client, (go) => {
      paused = !go;
      if (go) resumed?.();
      else pauses++;
    });
    // Sizes a socket read gives, and larger ones (a carrier's first bytes) split into frames.
    const sizes = [1, 64 * 1024, 17, 200 * 1024, 64 * 1024, 5000, 64 * 1024, 64 * 1024];
    let at = 0;
    let i = 0;
    let peak = 0;
    while (at < source.length) {
      if (paused) {
        // The far end reads only once the writer asked to pause: until then every frame waits.
        server.resume();
        await new Promise<void>((r) => {
          resumed = r;
        });
      }
      const n = Math.min(sizes[i++ % sizes.length], source.length - at);
      source.copy(shared, 0, at, at + n);
      writer.send(shared.subarray(0, n));
      // The chunk is the writer's only during the call: overwrite it, as the next read would.
      shared.fill(0xee, 0, n);
      at += n;
      peak = Math.max(peak, client.writableLength);
    }
    writer.end(false);
    await got.fin;
    assert.ok(pauses > 0, 'the writer paused the local side while the far end did not read');
    // What waits in the TLS socket stays bounded: what was staged, and one write in flight.
    assert.ok(peak <= 2 * STAGE_BYTES + TLS_HIGH_WATER_BYTES, `${peak} bytes queued at most`);
    assert.ok(got.bytes().equals(source), 'every byte, in order');
  });
});
