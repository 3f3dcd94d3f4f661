/**
 * `plexus logs` output (issue 15): app lines carry their capture time, so `--since` and `--json`
 * work for apps as for the agent's log; older unstamped lines stay readable.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../../src/cli/errors.ts';
import { logLineFormatter, parseSince } from '../../../src/cli/log-lines.ts';
import { parseStampedLine, stampLine } from '../../../src/core/log-stamp.ts';

const NOW = Date.parse('2026-12-06T12:00:00.000Z');

describe('logs --since', () => {
  it('reads whole durations and refuses anything else in one line', () => {
    assert.equal(parseSince('90s'), 90_000);
    assert.equal(parseSince('10m'), 600_000);
    assert.equal(parseSince('2h'), 7_200_000);
    assert.equal(parseSince('7d'), 7 * 86_400_000);
    for (const bad of ['10', 'm', '-5m', '1.5h', '10 minutes', '10x', '', '0m', '99999999d', '3651d']) {
      assert.throws(
        () => parseSince(bad),
        (e: Error) => e instanceof UsageError && e.exitCode === 2 && !e.message.includes('\n'),
        bad,
      );
    }
  });
});

describe('app log lines', () => {
  it('split into capture time and text; old unstamped lines and old markers stay readable', () => {
    const at = Date.parse('2026-12-06T11:55:00.123Z');
    assert.deepEqual(parseStampedLine(stampLine('listening on 8080', at)), {
      time: at,
      text: 'listening on 8080',
    });
    assert.deepEqual(parseStampedLine('listening on 8080'), { time: undefined, text: 'listening on 8080' });
    const old = '[plexus] 2026-12-01T10:00:00.000Z process 12 exit code 3';
    assert.deepEqual(parseStampedLine(old), { time: Date.parse('2026-12-01T10:00:00.000Z'), text: old });
    // A line that only looks like a stamp at its start keeps its text whole.
    assert.equal(parseStampedLine('2026-12-06 not a stamp').time, undefined);
  });

  it('--since keeps the app lines of the window; --json gives app, time and line', () => {
    const recent = stampLine('recent', NOW - 60_000);
    const stale = stampLine('stale', NOW - 3_600_000);
    const f = logLineFormatter({ app: 'web', system: false, json: true, sinceMs: 600_000 }, NOW);
    assert.equal(f(stale), undefined);
    assert.equal(f('unstamped, from before stamps'), undefined);
    assert.deepEqual(JSON.parse(f(recent) ?? ''), { app: 'web', time: NOW - 60_000, line: 'recent' });
    const all = logLineFormatter({ app: 'web', system: false, json: true }, NOW);
    assert.deepEqual(JSON.parse(all('old line') ?? ''), { app: 'web', time: null, line: 'old line' });
    const text = logLineFormatter({ app: 'web', system: false, json: false, sinceMs: 600_000 }, NOW);
    assert.equal(text(recent), recent, 'text output shows the line with its time, as stored');
  });

  it('--since on the agent log keeps the JSON lines of the window', () => {
    const f = logLineFormatter({ system: true, json: true, sinceMs: 600_000 }, NOW);
    const line = JSON.stringify({ time: NOW - 1_000, level: 30, msg: 'hi' });
    assert.equal(f(line), line);
    assert.equal(f(JSON.stringify({ time: NOW - 700_000, msg: 'old' })), undefined);
  });
});
