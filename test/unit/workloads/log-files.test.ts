import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { followFile, rotateIfLarge, tailLines } from '../../../src/workloads/log-files.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-logs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('app log files', () => {
  it('tails the last N lines, reaching into the rotated file when needed', async () => {
    const log = join(dir, 'app.log');
    writeFileSync(log, Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n') + '\n');
    assert.deepEqual(tailLines(log, 3), ['line 47', 'line 48', 'line 49']);
    assert.equal(await rotateIfLarge(log, 10, 3), true);
    assert.equal(readFileSync(log, 'utf8'), '', 'truncated in place (the child keeps its fd)');
    appendFileSync(log, 'after 1\nafter 2\n');
    assert.deepEqual(tailLines(log, 4), ['line 48', 'line 49', 'after 1', 'after 2']);
    assert.equal(await rotateIfLarge(log, 1_000_000, 3), false);
  });

  it('keeps only the configured number of rotated files', async () => {
    const log = join(dir, 'keep.log');
    for (let i = 0; i < 5; i++) {
      writeFileSync(log, `generation ${i}\n`);
      await rotateIfLarge(log, 1, 2);
    }
    assert.equal(readFileSync(`${log}.1`, 'utf8'), 'generation 4\n');
    assert.equal(readFileSync(`${log}.2`, 'utf8'), 'generation 3\n');
    assert.ok(!existsSync(`${log}.3`));
  });

  it('follows new lines, across a truncation', async () => {
    const log = join(dir, 'follow.log');
    writeFileSync(log, 'old\n');
    const got: string[] = [];
    const ctrl = new AbortController();
    const done = followFile(log, (lines) => void got.push(...lines), ctrl.signal);
    await new Promise((r) => setTimeout(r, 50));
    appendFileSync(log, 'one\ntw');
    await new Promise((r) => setTimeout(r, 300));
    appendFileSync(log, 'o\n');
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(log, 'fresh\n');
    await new Promise((r) => setTimeout(r, 300));
    ctrl.abort();
    await done;
    assert.deepEqual(got, ['one', 'two', 'fresh']);
  });
});
