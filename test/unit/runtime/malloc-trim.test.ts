/** The agent's malloc trimming: the addon works, and it trims only while the loop is idle. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadTrimAddon, type TrimAddon, trimMallocWhenIdle } from '../../../src/runtime/malloc-trim.ts';

const addon = loadTrimAddon();
const glibc = Boolean(
  (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime,
);

describe('malloc trim addon', () => {
  it('is built and hands freed heap memory back on glibc', { skip: !glibc && 'not glibc' }, () => {
    assert.ok(
      !(addon instanceof Error),
      `native/malloc-trim not built: ${addon instanceof Error ? addon.message : ''}`,
    );
    // A child frees 2000 malloc'd 32 KiB blocks, keeping every tenth: free memory below used
    // memory, which only malloc_trim gives back. RSS must drop by most of it.
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `const { trim } = require(${JSON.stringify(createRequire(import.meta.url).resolve('plexus-malloc-trim'))});
         const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]);
         let keep = [];
         let blocks = [];
         for (let i = 0; i < 2000; i++) { const b = Buffer.allocUnsafeSlow(32768); b.fill(1); (i % 10 ? blocks : keep).push(b); }
         blocks = null;
         globalThis.gc(); globalThis.gc();
         const before = rss();
         const released = trim();
         console.log(JSON.stringify({ released, droppedKb: before - rss(), kept: keep.length }));`,
      ],
      { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '--expose-gc' } },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { released: boolean; droppedKb: number };
    assert.equal(out.released, true);
    assert.ok(out.droppedKb > 30_000, `RSS dropped only ${out.droppedKb} kB`);
  });
});

describe('trimMallocWhenIdle', () => {
  const counting = () => {
    const a = {
      calls: 0,
      supported: true,
      trim() {
        a.calls += 1;
        return true;
      },
    };
    return a satisfies TrimAddon;
  };
  const log = { lines: [] as string[], debug: (_: object, msg: string) => log.lines.push(msg) };

  it('trims when the event loop is idle', async () => {
    const a = counting();
    const t = trimMallocWhenIdle(log, { firstMs: 20, everyMs: 30, addon: a });
    // ~150 ms on a quiet machine; timers run late on a loaded one, so wait up to 3 s for it.
    for (const until = performance.now() + 3000; a.calls < 3 && performance.now() < until; ) await sleep(30);
    t.stop();
    assert.ok(a.calls >= 3, `trimmed ${a.calls} times`);
  });

  it('does not trim while the event loop is busy', async () => {
    const a = counting();
    const t = trimMallocWhenIdle(log, { firstMs: 20, everyMs: 30, addon: a });
    const until = performance.now() + 200;
    while (performance.now() < until) {
      const spin = performance.now() + 10;
      while (performance.now() < spin);
      await new Promise((r) => setImmediate(r));
    }
    t.stop();
    assert.equal(a.calls, 0);
  });

  it('says once in the debug log when there is no addon, and runs nothing', () => {
    const quiet = { lines: [] as string[], debug: (_: object, msg: string) => quiet.lines.push(msg) };
    trimMallocWhenIdle(quiet, { addon: new Error('not built') }).stop();
    assert.deepEqual(quiet.lines, ['malloc trim unavailable; freed heap memory stays resident']);
  });
});
