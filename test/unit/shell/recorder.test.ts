import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startRecording } from '../../../src/shell/recorder.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-rec-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const id = (n: number) => `session-${String(n).padStart(10, '0')}`;

describe('session recordings', () => {
  it('writes asciicast v2: a header, output events and resizes', () => {
    const rec = startRecording({ dir, keep: 10, maxBytes: 1 << 20 }, id(0), { cols: 80, rows: 24 });
    // A UTF-8 character split across two chunks is written whole.
    const euro = Buffer.from('€');
    rec.output(Buffer.concat([Buffer.from('42\r\n'), euro.subarray(0, 1)]));
    rec.output(euro.subarray(1));
    rec.resize(120, 40);
    rec.close();
    const lines = readFileSync(rec.file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines[0].version, 2);
    assert.deepEqual([lines[0].width, lines[0].height], [80, 24]);
    assert.deepEqual(
      lines.slice(1).map((e: unknown[]) => [e[1], e[2]]),
      [
        ['o', '42\r\n'],
        ['o', '€'],
        ['r', '120x40'],
      ],
    );
  });

  it('keeps at most `keep` files, the newest, and cuts one at maxBytes', () => {
    const sub = join(dir, 'rotate');
    for (let n = 1; n <= 5; n++)
      startRecording({ dir: sub, keep: 3, maxBytes: 1 << 20 }, id(n), { cols: 80, rows: 24 }).close();
    assert.deepEqual(
      readdirSync(sub).sort(),
      [3, 4, 5].map((n) => `${id(n)}.cast`),
    );
    const big = startRecording({ dir: sub, keep: 3, maxBytes: 4096 }, id(9), { cols: 80, rows: 24 });
    for (let i = 0; i < 100; i++) big.output(Buffer.alloc(100, 'x'));
    big.close();
    const text = readFileSync(big.file, 'utf8');
    assert.ok(text.length < 4096 + 200, String(text.length));
    assert.match(text, /recording cut/);
  });
});
