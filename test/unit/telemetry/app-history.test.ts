/**
 * The per-app history (app-history.ts): 1 h of this node's apps' CPU and memory in slots shared
 * with their timestamps, an immediate publish replacing its slot, apps coming and going, and
 * its bounds: nothing held without apps, at most MAX_RECORD_APPS apps, a gone app dropped.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TelemetryRecord } from '../../../src/mesh/index.ts';
import { MAX_RECORD_APPS } from '../../../src/mesh/index.ts';
import { AppHistory } from '../../../src/telemetry/app-history.ts';
import { sampleRecord } from '../../helpers/telemetry.ts';

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);
const app = (name: string, cpuPct: number | null, memMb = 10) => ({
  name,
  status: 'running' as const,
  pid: 1,
  cpuPct,
  memMb,
  restarts: 0,
  release: 'r1',
});
const rec = (ts: number, apps: ReturnType<typeof app>[]) => sampleRecord({ ts, apps }) as TelemetryRecord;

describe('app history', () => {
  it('keeps 1 h of each app at the interval, aligned on shared timestamps', () => {
    const h = new AppHistory({ intervalMs: 5000 });
    for (let i = 0; i < 1000; i++) h.add(rec(T0 + i * 5000, [app('api', i % 100, 50 + (i % 3))]));
    const all = h.query(0);
    assert.equal(all.ts.length, 720, '1 h at 5 s');
    assert.equal(all.stepS, 5);
    assert.equal(all.ts.at(-1), T0 + 999 * 5000);
    const recent = h.query(T0 + 997 * 5000);
    assert.deepEqual(recent.apps.api, { cpuPct: [97, 98, 99], memMb: [51, 52, 50] });
  });

  it('an app that appears later or leaves is null where absent; an immediate publish replaces its slot', () => {
    const h = new AppHistory({ intervalMs: 5000 });
    h.add(rec(T0, [app('api', 1)]));
    h.add(rec(T0 + 5000, [app('api', 2), app('worker', 7, 30)]));
    // An app changed state 1 s later: the node publishes at once, and that replaces the point.
    h.add(rec(T0 + 6000, [app('api', 3), app('worker', 8, 30)]));
    h.add(rec(T0 + 10_000, [app('worker', 9, 31)]));
    h.add(rec(T0 + 15_000, [app('worker', null, 31)]));
    const r = h.query(0);
    assert.deepEqual(r.ts, [T0, T0 + 6000, T0 + 10_000, T0 + 15_000]);
    assert.deepEqual(r.apps.api.cpuPct, [1, 3, null, null]);
    assert.deepEqual(r.apps.worker.cpuPct, [null, 8, 9, null]);
    assert.deepEqual(r.apps.worker.memMb, [null, 30, 31, 31]);
  });

  it('holds nothing for a node without apps, drops an app gone for the whole span, and caps the apps', () => {
    const h = new AppHistory({ intervalMs: 60_000 });
    h.add(rec(T0, []));
    assert.deepEqual(h.query(0), { node: '', stepS: 60, ts: [], apps: {} });
    h.add(rec(T0 + 60_000, [app('old', 1)]));
    for (let i = 2; i < 70; i++) h.add(rec(T0 + i * 60_000, []));
    assert.equal(h.query(0).apps.old, undefined, 'gone for 60 slots (the whole hour)');
    const many = Array.from({ length: MAX_RECORD_APPS + 5 }, (_, i) => app(`a${i}`, i));
    h.add(rec(T0 + 80 * 60_000, many));
    assert.equal(Object.keys(h.query(0).apps).length, MAX_RECORD_APPS);
  });
});
