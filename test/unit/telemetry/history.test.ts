import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TelemetryRecord } from '../../../src/mesh/index.ts';
import { TelemetryHistory } from '../../../src/telemetry/history.ts';
import { sampleRecord } from '../../helpers/telemetry.ts';

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
const rec = (ts: number, pct: number, node = 'web-1') =>
  sampleRecord({ ts, node, cpu: { pct, cores: 2, load: [1, 1, 1] } }) as TelemetryRecord;

describe('telemetry history', () => {
  it('keeps 1 h of points at the interval and answers since=', () => {
    const h = new TelemetryHistory({ intervalMs: 5000 });
    for (let i = 0; i < 1000; i++) h.add(rec(T0 + i * 5000, i % 100));
    const all = h.query('web-1', 0, 'fine');
    assert.equal(all?.points.length, 720, '1 h at 5 s');
    assert.equal(all?.stepS, 5);
    assert.equal(all?.points.at(-1)?.ts, T0 + 999 * 5000);
    const recent = h.query('web-1', T0 + 990 * 5000);
    assert.equal(recent?.resolution, 'fine');
    assert.deepEqual(
      recent?.points.map((p) => p.cpuPct),
      [90, 91, 92, 93, 94, 95, 96, 97, 98, 99],
    );
    assert.equal(recent?.points[0].appsRunning, 1);
  });

  it('keeps 1-minute means for 24 h and picks them for older ranges', () => {
    const h = new TelemetryHistory({ intervalMs: 5000 });
    // Two hours: the fine ring holds the last hour only.
    for (let i = 0; i < 1440; i++) h.add(rec(T0 + i * 5000, i < 12 ? 10 + (i % 2) * 20 : 50));
    const old = h.query('web-1', T0);
    assert.equal(old?.resolution, 'coarse');
    assert.equal(old?.stepS, 60);
    assert.equal(old?.points[0].ts, T0);
    assert.equal(old?.points[0].cpuPct, 20, 'the mean of the first minute (10 and 30 alternating)');
    assert.equal(old?.points.length, 120, '119 closed minutes plus the running one');
  });

  it('a young node answers from its fine points, also once a minute has closed', () => {
    // First record 20 s into a minute, a query reaching back 60 s across the next minute: the
    // closed minute's mean is stamped with the minute's start, 20 s before the first fine point,
    // but it holds no older data, so the fine points (one per interval) must answer.
    const h = new TelemetryHistory({ intervalMs: 1000 });
    const start = T0 + 20_000;
    for (let i = 0; i < 50; i++) h.add(rec(start + i * 1000, i));
    const r = h.query('web-1', start + 49_000 - 60_000);
    assert.equal(r?.resolution, 'fine');
    assert.equal(r?.points.length, 50);
  });

  it('replaces, not adds, a point published inside the same interval (app change)', () => {
    const h = new TelemetryHistory({ intervalMs: 5000 });
    h.add(rec(T0, 1));
    h.add(rec(T0 + 5000, 2));
    h.add(rec(T0 + 5100, 3));
    assert.deepEqual(
      h.query('web-1', 0, 'fine')?.points.map((p) => p.cpuPct),
      [1, 3],
    );
  });

  it('keeps unknown figures as null and finds nodes by name or peer id', () => {
    const h = new TelemetryHistory({ intervalMs: 1000 });
    const r = sampleRecord({
      ts: T0,
      cpu: { pct: null, cores: 1, load: [null, null, null] },
    }) as TelemetryRecord;
    h.add(r);
    assert.equal(h.query(r.peerId, 0)?.points[0].cpuPct, null);
    assert.equal(h.query('web-1', 0)?.points[0].load1, null);
    assert.equal(h.query('nope', 0), undefined);
  });
});
