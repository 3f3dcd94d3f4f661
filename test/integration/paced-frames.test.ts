/**
 * pacedFrames (src/mesh/paced-frames.ts) over a real in-process yamux stream: a writer faster
 * than its reader is held back by the stream's window instead of filling libp2p's byte buffer
 * until it aborts the stream (the command protocol's `exec -i` input and reply frames).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { PACED_HIGH_WATER_BYTES, pacedFrames } from '../../src/mesh/paced-frames.ts';
import { closeMuxers, MAX_WINDOW, yamuxPair } from '../helpers/yamux-pair.ts';

const FRAME = 64 * 1024;
const MAX_FRAMES = 1024; // 64 MiB at most: bounded whatever happens

/** Frame i: FRAME bytes, every byte i % 251 (checked at the far end). */
const frame = (i: number) => new Uint8Array(FRAME).fill(i % 251);

/** Writes frames until one write waits `ms` (held back); resolves with how many went out. */
async function writeUntilHeldBack(w: ReturnType<typeof pacedFrames>, ms = 300): Promise<number> {
  for (let i = 0; i < MAX_FRAMES; i++) {
    let timer: NodeJS.Timeout | undefined;
    const held = await Promise.race([
      w.write(frame(i)).then(() => false),
      new Promise<true>((r) => {
        timer = setTimeout(r, ms, true);
      }),
    ]).finally(() => clearTimeout(timer));
    if (held) return i + 1;
  }
  throw new Error(`the writer was never held back (${MAX_FRAMES} frames)`);
}

describe('paced frames', () => {
  after(() => closeMuxers());

  test('a reader that stops holds the writer back; every frame then arrives, in order', async () => {
    const [a, b] = await yamuxPair(MAX_WINDOW);
    b.maxReadBufferLength = 2 * MAX_WINDOW;
    const writer = pacedFrames(a, { maxDataLength: 1024 * 1024 });
    const reader = pacedFrames(b, { maxDataLength: 1024 * 1024 });
    // Nobody reads: the writer must stop, with no more waiting than the mark plus one window.
    const sent = await writeUntilHeldBack(writer);
    assert.equal(b.status, 'open', 'the stream was aborted');
    assert.equal(b.readStatus, 'paused');
    assert.ok(reader.unread + b.readBufferLength <= PACED_HIGH_WATER_BYTES + MAX_WINDOW + FRAME);
    // Reading lets the rest through (including the write that was held back).
    for (let i = 0; i < sent; i++) {
      const f = await reader.read({ signal: AbortSignal.timeout(10_000) });
      assert.equal(f.byteLength, FRAME);
      assert.ok(f[0] === i % 251 && f[FRAME - 1] === i % 251, `frame ${i} out of order`);
    }
    assert.equal(reader.unread, 0);
    await a.close();
    await b.close();
  });

  test('a frame larger than the mark still reads whole, however slowly it is read', async () => {
    const [a, b] = await yamuxPair();
    const big = 3 * 1024 * 1024;
    const writer = pacedFrames(a, { maxDataLength: big });
    const reader = pacedFrames(b, { maxDataLength: big, highWaterBytes: 64 * 1024 });
    const out = Promise.all([0, 1, 2].map(() => writer.write(new Uint8Array(big).fill(7))));
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const f = await reader.read({ signal: AbortSignal.timeout(10_000) });
      assert.equal(f.byteLength, big);
    }
    await out;
    assert.equal(b.status, 'open');
    await a.close();
    await b.close();
  });
});
