/**
 * The record layer of tunnel data connections (src/tunnels/carriers/data/record-encryption.ts):
 * what goes in comes out in order however the bytes are cut, and a changed, truncated, oversized
 * or misdirected record is refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  deriveRecordKeys,
  MAX_RECORD_BYTES,
  type OpenedRecord,
  RECORD_HEADER_BYTES,
  RECORD_TAG_BYTES,
  RecordOpener,
  RecordSealer,
} from '../../../../../src/tunnels/carriers/data/record-encryption.ts';
import { codeOf } from '../../../../helpers/errors.ts';

const secret = randomBytes(32);
const client = deriveRecordKeys(secret, 'client');
const server = deriveRecordKeys(secret, 'server');

/** Feeds `wire` to `opener` in pieces of the given sizes (cycled). */
function feed(opener: RecordOpener, wire: Buffer, sizes: number[]): OpenedRecord[] {
  const out: OpenedRecord[] = [];
  for (let at = 0, i = 0; at < wire.byteLength; i++) {
    const n = sizes[i % sizes.length];
    // The opener must not keep the chunk: hand it a copy that we then scribble over.
    const chunk = Buffer.from(wire.subarray(at, at + n));
    out.push(...opener.push(chunk));
    chunk.fill(0xee);
    at += n;
  }
  return out;
}

const plain = (records: OpenedRecord[]) => Buffer.concat(records.flatMap((r) => r.parts));

describe('tunnel data records', () => {
  test('round trip in order, whatever the chunking, with FIN last', () => {
    const messages = [
      randomBytes(1),
      randomBytes(65536),
      Buffer.alloc(0),
      randomBytes(MAX_RECORD_BYTES + 17),
    ];
    const sealer = new RecordSealer(client.send);
    const wire = Buffer.concat([...messages.flatMap((m) => sealer.seal(m)), ...sealer.fin()]);
    for (const sizes of [[1], [3, 5, 7], [4096], [wire.byteLength]]) {
      const records = feed(new RecordOpener(server.receive), wire, sizes);
      assert.deepEqual(plain(records), Buffer.concat(messages), String(sizes));
      assert.equal(records.at(-1)?.fin, true);
      assert.equal(records.filter((r) => r.fin).length, 1);
    }
  });

  test('each direction has its own key', () => {
    const wire = Buffer.concat(new RecordSealer(client.send).seal(Buffer.from('hello')));
    assert.equal(
      codeOf(() => new RecordOpener(client.receive).push(wire)),
      'BAD_RECORD',
    );
    assert.equal(plain(new RecordOpener(server.receive).push(wire)).toString(), 'hello');
  });

  test('a flipped byte anywhere in a record is refused, and nothing of it is handed out', () => {
    const wire = Buffer.concat(new RecordSealer(client.send).seal(randomBytes(100)));
    for (const at of [0, 3, RECORD_HEADER_BYTES, 50, wire.byteLength - 1]) {
      const bad = Buffer.from(wire);
      bad[at] ^= 0x01;
      const opener = new RecordOpener(server.receive);
      let code: string | undefined;
      try {
        const out = opener.push(bad);
        // A changed length may leave the opener waiting for more: it has handed out nothing.
        assert.equal(plain(out).byteLength, 0, `byte ${at}`);
        code = 'WAITING';
      } catch (err) {
        code = (err as { code: string }).code;
      }
      assert.ok(['BAD_RECORD', 'RECORD_TOO_LARGE', 'WAITING'].includes(code), `byte ${at}: ${code}`);
    }
  });

  test('records cannot be replayed, reordered or dropped', () => {
    const sealer = new RecordSealer(client.send);
    const [a, b] = [
      Buffer.concat(sealer.seal(Buffer.from('a'))),
      Buffer.concat(sealer.seal(Buffer.from('b'))),
    ];
    assert.equal(
      codeOf(() => new RecordOpener(server.receive).push(Buffer.concat([a, a]))),
      'BAD_RECORD',
    );
    assert.equal(
      codeOf(() => new RecordOpener(server.receive).push(Buffer.concat([b, a]))),
      'BAD_RECORD',
    );
    assert.equal(
      codeOf(() => new RecordOpener(server.receive).push(b)),
      'BAD_RECORD',
    );
  });

  test('an oversized length and data after FIN are refused', () => {
    const header = Buffer.alloc(RECORD_HEADER_BYTES + RECORD_TAG_BYTES);
    header.writeUInt32BE(MAX_RECORD_BYTES + 1, 0);
    assert.equal(
      codeOf(() => new RecordOpener(server.receive).push(header)),
      'RECORD_TOO_LARGE',
    );
    const sealer = new RecordSealer(client.send);
    const fin = Buffer.concat(sealer.fin());
    assert.equal(
      codeOf(() => sealer.seal(Buffer.from('x'))),
      'AFTER_FIN',
    );
    const opener = new RecordOpener(server.receive);
    assert.equal(opener.push(fin)[0].fin, true);
    assert.equal(
      codeOf(() => opener.push(Buffer.alloc(RECORD_HEADER_BYTES))),
      'AFTER_FIN',
    );
  });
});
