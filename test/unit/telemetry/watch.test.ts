/**
 * `telemetry.watch` (watch.ts): a snapshot at once, one more per burst of records (never a
 * backlog behind a slow reader), and the end of the stream when the caller leaves.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { Mesh } from '../../../src/mesh/index.ts';
import { WATCH_MIN_GAP_MS } from '../../../src/telemetry/constants.ts';
import { watchNodes } from '../../../src/telemetry/watch.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('telemetry.watch', () => {
  it('sends a snapshot at once, one per burst of records, and stops when the caller leaves', async () => {
    const bus = new EventEmitter();
    const abort = new AbortController();
    let version = 0;
    const sent: number[] = [];
    const done = watchNodes(
      bus as unknown as Mesh['telemetry'],
      () => version,
      async (v) => {
        sent.push(v);
      },
      abort.signal,
    );
    await sleep(10);
    assert.deepEqual(sent, [0]);
    for (let i = 1; i <= 20; i++) {
      version = i;
      bus.emit('record', {});
    }
    await sleep(WATCH_MIN_GAP_MS * 2);
    assert.deepEqual(sent, [0, 20], 'a burst of 20 records is one snapshot, the latest');
    version = 21;
    bus.emit('self', {});
    await sleep(WATCH_MIN_GAP_MS * 2);
    assert.deepEqual(sent, [0, 20, 21]);
    abort.abort();
    await done;
    assert.equal(bus.listenerCount('record') + bus.listenerCount('self'), 0, 'listeners removed');
  });

  it('ends with the send error when the caller’s stream fails', async () => {
    const bus = new EventEmitter();
    const gone = new Error('caller left');
    await assert.rejects(
      watchNodes(
        bus as unknown as Mesh['telemetry'],
        () => 1,
        async () => {
          throw gone;
        },
        new AbortController().signal,
      ),
      gone,
    );
    assert.equal(bus.listenerCount('record'), 0);
  });
});
