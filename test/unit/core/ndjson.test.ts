/** NDJSON lines over byte streams: split anywhere, bounded in size, malformed JSON refused. */
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { parseJsonLine, readLines, writeJsonLine } from '../../../src/core/ndjson.ts';

async function collect(chunks: string[], max: number): Promise<string[]> {
  const out: string[] = [];
  for await (const line of readLines(Readable.from(chunks.map((c) => Buffer.from(c))), max)) out.push(line);
  return out;
}

describe('ndjson', () => {
  it('yields whole lines however the bytes are split, skipping blank ones, with a last unterminated line', async () => {
    assert.deepEqual(await collect(['{"a"', ':1}\n\n{"b":2}\n{"c"', ':3}'], 100), [
      '{"a":1}',
      '{"b":2}',
      '{"c":3}',
    ]);
  });

  it('a line over the limit is LINE_TOO_LONG, terminated or not', async () => {
    await assert.rejects(collect(['x'.repeat(11), '\n'], 10), {
      name: 'LineTooLongError',
      code: 'LINE_TOO_LONG',
    });
    await assert.rejects(collect(['x'.repeat(6), 'x'.repeat(6)], 10), { name: 'LineTooLongError' });
    assert.deepEqual(await collect(['x'.repeat(10), '\n'], 10), ['x'.repeat(10)]);
  });

  it('malformed JSON is BAD_JSON', () => {
    assert.throws(() => parseJsonLine('{"a":'), { name: 'BadJsonError', code: 'BAD_JSON' });
    assert.deepEqual(parseJsonLine('{"a":[1]}'), { a: [1] });
  });

  it('writes one line per value and waits for the stream to drain', async () => {
    const stream = new PassThrough({ highWaterMark: 8 });
    let done = false;
    const write = writeJsonLine(stream, { big: 'x'.repeat(32) }).then(() => {
      done = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(done, false, 'waits while the stream is full');
    const line = (stream.read() as Buffer).toString();
    await write;
    assert.equal(line, `${JSON.stringify({ big: 'x'.repeat(32) })}\n`);
  });
});
