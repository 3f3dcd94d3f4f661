/**
 * The frames inside a data connection's TLS (src/tunnels/carriers/data/frames.ts): pieces come
 * out however the bytes were split, a direction ends only with its FIN frame, and bad headers
 * are refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type FramePiece,
  FrameReader,
  MAX_FRAME_BYTES,
} from '../../../../../src/tunnels/carriers/data/frames.ts';
import { codeOf } from '../../../../helpers/errors.ts';

const frame = (body: Buffer) =>
  Buffer.concat([Buffer.from([0, 0, body.length >> 8, body.length & 255]), body]);
const FIN = Buffer.from([0x80, 0, 0, 0]);

/** What a reader makes of `wire` fed in pieces of `step` bytes: payloads per frame, and FIN. */
function read(wire: Buffer, step: number): { frames: string[]; fin: boolean } {
  const r = new FrameReader();
  const frames: string[] = [];
  let current = '';
  let fin = false;
  for (let at = 0; at < wire.length; at += step) {
    for (const p of r.push(wire.subarray(at, at + step)) as FramePiece[]) {
      if ('fin' in p) fin = true;
      else {
        current += p.bytes.toString();
        if (p.last) {
          frames.push(current);
          current = '';
        }
      }
    }
  }
  assert.equal(r.finished, fin);
  return { frames, fin };
}

describe('data connection frames', () => {
  test('frames come out whole however the bytes are split; FIN ends the direction', () => {
    const wire = Buffer.concat([
      frame(Buffer.from('{"port":5432}')),
      frame(Buffer.from('x'.repeat(300))),
      FIN,
    ]);
    for (const step of [1, 2, 3, 5, 17, wire.length]) {
      assert.deepEqual(
        read(wire, step),
        { frames: ['{"port":5432}', 'x'.repeat(300)], fin: true },
        `step ${step}`,
      );
    }
    assert.deepEqual(read(frame(Buffer.from('abc')), 1), { frames: ['abc'], fin: false });
  });

  test('empty, oversized, FIN-with-bytes frames and bytes after FIN are refused', () => {
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MAX_FRAME_BYTES + 1);
    for (const bad of [
      Buffer.from([0, 0, 0, 0]),
      big,
      Buffer.from([0x80, 0, 0, 1]),
      Buffer.concat([FIN, FIN]),
    ])
      assert.equal(
        codeOf(() => new FrameReader().push(bad)),
        'BAD_FRAME',
        bad.toString('hex'),
      );
  });
});
