/** Frames of /plexus/tcp/1.0.0 on a libp2p stream (src/tunnels/carriers/stream/frames.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeFrame } from '../../../../../src/tunnels/carriers/stream/frames.ts';

describe('stream frames', () => {
  test('varint length prefix, then JSON', () => {
    const f = encodeFrame({ service: 'db' });
    assert.equal(f[0], f.length - 1);
    assert.deepEqual(JSON.parse(Buffer.from(f.subarray(1)).toString()), { service: 'db' });
    const long = encodeFrame({ pad: 'x'.repeat(300) });
    assert.equal(long[0] & 0x80, 0x80); // two-byte prefix
    assert.equal((long[0] & 0x7f) | (long[1] << 7), long.length - 2);
  });
});
