/** Frames of /plexus/tcp/1.0.0 on a libp2p stream (src/tunnels/carriers/stream/frames.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Stream } from '@libp2p/interface';
import { encodeFrame, readFrame } from '../../../../../src/tunnels/carriers/stream/frames.ts';

/**
 * readFrame only listens to a stream's `message`, `close` and `end` events: an EventTarget that
 * fires them stands in for a libp2p stream, and counts the listeners left behind.
 */
function fakeStream() {
  const target = new EventTarget();
  let listeners = 0;
  const add = target.addEventListener.bind(target);
  const remove = target.removeEventListener.bind(target);
  const stream = Object.assign(target, {
    addEventListener: (type: string, fn: EventListener) => {
      listeners++;
      add(type, fn);
    },
    removeEventListener: (type: string, fn: EventListener) => {
      listeners--;
      remove(type, fn);
    },
  });
  return {
    stream: stream as unknown as Stream,
    send: (data: Uint8Array) => target.dispatchEvent(Object.assign(new Event('message'), { data })),
    close: () => target.dispatchEvent(new Event('close')),
    listeners: () => listeners,
  };
}

describe('stream frames', () => {
  test('varint length prefix, then JSON', () => {
    const f = encodeFrame({ service: 'db' });
    assert.equal(f[0], f.length - 1);
    assert.deepEqual(JSON.parse(Buffer.from(f.subarray(1)).toString()), { service: 'db' });
    const long = encodeFrame({ pad: 'x'.repeat(300) });
    assert.equal(long[0] & 0x80, 0x80); // two-byte prefix
    assert.equal((long[0] & 0x7f) | (long[1] << 7), long.length - 2);
  });

  test('a frame split over messages is read whole; what follows it is handed back', async () => {
    const s = fakeStream();
    const read = readFrame(s.stream, 1024, new AbortController().signal);
    const frame = encodeFrame({ service: 'db', pad: 'x'.repeat(200) });
    s.send(frame.subarray(0, 1));
    s.send(Buffer.concat([frame.subarray(1), Buffer.from('raw')]));
    const { value, rest } = await read;
    assert.deepEqual(value, { service: 'db', pad: 'x'.repeat(200) });
    assert.equal(Buffer.from(rest.subarray()).toString(), 'raw');
    assert.equal(s.listeners(), 0);
  });

  test('oversized, malformed and endless-prefix frames are refused, listeners removed', async () => {
    for (const [bytes, code] of [
      [encodeFrame({ pad: 'x'.repeat(100) }), 'FRAME_TOO_LARGE'],
      [Buffer.from([3, 0x7b, 0x7b, 0x7b]), 'BAD_FRAME'],
      [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01]), 'BAD_FRAME'],
    ] as const) {
      const s = fakeStream();
      const read = readFrame(s.stream, 64, new AbortController().signal);
      s.send(bytes);
      await assert.rejects(read, { name: 'TunnelProtocolError', code });
      assert.equal(s.listeners(), 0);
    }
  });

  test('the deadline and an early close end the wait, once', async () => {
    const late = fakeStream();
    const ac = new AbortController();
    const read = readFrame(late.stream, 64, ac.signal);
    ac.abort();
    late.close(); // after the deadline: ignored
    await assert.rejects(read, { code: 'TIMEOUT', kind: 'unavailable' });
    assert.equal(late.listeners(), 0);

    const closed = fakeStream();
    const read2 = readFrame(closed.stream, 64, new AbortController().signal);
    closed.send(Buffer.from([10, 0x7b])); // half a frame, then the peer goes
    closed.close();
    await assert.rejects(read2, { code: 'STREAM_CLOSED' });
    assert.equal(closed.listeners(), 0);

    await assert.rejects(readFrame(fakeStream().stream, 64, AbortSignal.abort()), { code: 'TIMEOUT' });
  });
});
