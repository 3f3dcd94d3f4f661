/**
 * Telemetry history for charts: per node, a fine ring (one point per interval, 1 h) and a coarse
 * ring (1-minute means, 24 h), in memory.
 *
 * Why memory and not SQLite: every node receives every node's record every interval, so at 50
 * nodes and 5 s that is 10 writes/s forever, for data whose only use is a chart. Typed-array rings
 * cost ~190 KB per node, no disk I/O and no pruning job, and are capped (MAX_HISTORY_NODES).
 * The price is that a restarted agent starts its charts empty; every other node still has them.
 */
import type { TelemetryRecord } from '../mesh/index.ts';
import {
  COARSE_POINTS,
  COARSE_STEP_S,
  FINE_HISTORY_SPAN_S,
  MAX_FINE_POINTS,
  MAX_HISTORY_NODES,
} from './constants.ts';

/** The fields of one history point, in storage order. */
export const POINT_FIELDS = [
  'ts',
  'cpuPct',
  'load1',
  'memUsedMb',
  'memTotalMb',
  'diskUsedGb',
  'diskTotalGb',
  'rxBps',
  'txBps',
  'appsRunning',
  'appsTotal',
] as const;
/** One point of a node's history; `null` where the figure was unknown. */
export type HistoryPoint = { ts: number } & Record<
  Exclude<(typeof POINT_FIELDS)[number], 'ts'>,
  number | null
>;
const N = POINT_FIELDS.length;

/** A fixed-size ring of points stored in one Float64Array (NaN = unknown). */
class Ring {
  readonly #data: Float64Array;
  readonly #cap: number;
  #head = 0; // next write slot
  #size = 0;

  constructor(cap: number) {
    this.#cap = cap;
    this.#data = new Float64Array(cap * N);
  }

  push(v: Float64Array): void {
    this.#data.set(v, this.#head * N);
    this.#head = (this.#head + 1) % this.#cap;
    if (this.#size < this.#cap) this.#size++;
  }

  /** Replaces the newest point (several records inside one interval keep the newest). */
  replaceLast(v: Float64Array): void {
    if (this.#size === 0) {
      this.push(v);
      return;
    }
    this.#data.set(v, ((this.#head - 1 + this.#cap) % this.#cap) * N);
  }

  lastTs(): number | undefined {
    return this.#size === 0 ? undefined : this.#data[((this.#head - 1 + this.#cap) % this.#cap) * N];
  }

  firstTs(): number | undefined {
    return this.#size === 0 ? undefined : this.#data[((this.#head - this.#size + this.#cap) % this.#cap) * N];
  }

  /** Points with ts ≥ since, oldest first. */
  since(since: number): HistoryPoint[] {
    const out: HistoryPoint[] = [];
    for (let i = 0; i < this.#size; i++) {
      const at = ((this.#head - this.#size + i + this.#cap) % this.#cap) * N;
      if (this.#data[at] < since) continue;
      out.push(toPoint(this.#data.subarray(at, at + N)));
    }
    return out;
  }
}

/** Running per-field means of the current minute. */
class MinuteBucket {
  readonly sums = new Float64Array(N);
  readonly counts = new Uint32Array(N);
  start = 0;

  add(v: Float64Array): void {
    for (let i = 1; i < N; i++) {
      if (Number.isNaN(v[i])) continue;
      this.sums[i] += v[i];
      this.counts[i]++;
    }
  }

  mean(): Float64Array {
    const out = new Float64Array(N);
    out[0] = this.start;
    for (let i = 1; i < N; i++) out[i] = this.counts[i] ? this.sums[i] / this.counts[i] : Number.NaN;
    return out;
  }

  reset(start: number): void {
    this.sums.fill(0);
    this.counts.fill(0);
    this.start = start;
  }
}

interface Series {
  name: string;
  peerId: string;
  fine: Ring;
  coarse: Ring;
  bucket: MinuteBucket;
}

/** Which ring a query reads. */
export type Resolution = 'fine' | 'coarse';

/** A history query's answer. */
export interface HistoryResult {
  node: string;
  peerId: string;
  resolution: Resolution;
  /** Seconds between points. */
  stepS: number;
  points: HistoryPoint[];
}

/** Points in a fine ring: one per interval over FINE_HISTORY_SPAN_S, 60 to MAX_FINE_POINTS. */
export function fineSlots(intervalMs: number): number {
  return Math.max(60, Math.min(MAX_FINE_POINTS, Math.ceil((FINE_HISTORY_SPAN_S * 1000) / intervalMs)));
}

/** History of every node's records. */
export class TelemetryHistory {
  readonly #series = new Map<string, Series>();
  readonly #intervalMs: number;
  readonly #fineCap: number;

  constructor(init: { intervalMs: number }) {
    this.#intervalMs = init.intervalMs;
    this.#fineCap = fineSlots(init.intervalMs);
  }

  /** Records one received (or own) record. Returns false if the node cap is reached. */
  add(r: TelemetryRecord): boolean {
    let s = this.#series.get(r.peerId);
    if (!s) {
      if (this.#series.size >= MAX_HISTORY_NODES) return false;
      s = {
        name: r.node,
        peerId: r.peerId,
        fine: new Ring(this.#fineCap),
        coarse: new Ring(COARSE_POINTS),
        bucket: new MinuteBucket(),
      };
      s.bucket.reset(minuteOf(r.ts));
      this.#series.set(r.peerId, s);
    }
    s.name = r.node;
    const v = toVector(r);
    const last = s.fine.lastTs();
    if (last !== undefined && r.ts < last) return true; // out of order (clock step): skip
    // An immediate publish (app change) inside the same interval replaces, not adds, a point.
    if (last !== undefined && r.ts - last < this.#intervalMs / 2) s.fine.replaceLast(v);
    else s.fine.push(v);
    const minute = minuteOf(r.ts);
    if (minute !== s.bucket.start) {
      s.coarse.push(s.bucket.mean());
      s.bucket.reset(minute);
    }
    s.bucket.add(v);
    return true;
  }

  /** Forgets a node (revoked). */
  forget(peerId: string): void {
    this.#series.delete(peerId);
  }

  /** The nodes with history. */
  nodes(): { node: string; peerId: string }[] {
    return [...this.#series.values()].map((s) => ({ node: s.name, peerId: s.peerId }));
  }

  /**
   * Points of `node` (name or peer ID) since `since` (epoch ms). Without `resolution`, the fine
   * ring answers if it reaches back to `since`, otherwise the coarse one.
   */
  query(node: string, since: number, resolution?: Resolution): HistoryResult | undefined {
    const s = this.#series.get(node) ?? [...this.#series.values()].find((x) => x.name === node);
    if (!s) return undefined;
    const fineFrom = s.fine.firstTs() ?? Number.POSITIVE_INFINITY;
    const coarseFrom = s.coarse.firstTs() ?? Number.POSITIVE_INFINITY;
    // Fine when it reaches back to `since`, or when the coarse ring has nothing older anyway. A
    // minute's mean is stamped with the minute's start, so it is older data only when it comes
    // from a minute before the one of the first fine point (the fine ring has wrapped); the
    // minute a node started in is not (a young node's chart would get 1 point a minute).
    const coarseOlder = coarseFrom < minuteOf(fineFrom);
    const res: Resolution = resolution ?? (since >= fineFrom || !coarseOlder ? 'fine' : 'coarse');
    if (res === 'fine') {
      return {
        node: s.name,
        peerId: s.peerId,
        resolution: res,
        stepS: this.#intervalMs / 1000,
        points: s.fine.since(since),
      };
    }
    const points = s.coarse.since(since);
    // The running minute, so a chart's right edge is never a minute stale.
    if (s.bucket.counts[1] > 0 || s.bucket.counts[3] > 0) {
      const cur = toPoint(s.bucket.mean());
      if (cur.ts >= since) points.push(cur);
    }
    return { node: s.name, peerId: s.peerId, resolution: res, stepS: COARSE_STEP_S, points };
  }
}

function minuteOf(ts: number): number {
  return ts - (ts % (COARSE_STEP_S * 1000));
}

function num(v: number | null | undefined): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : Number.NaN;
}

function toVector(r: TelemetryRecord): Float64Array {
  const running = r.apps.filter((a) => a.status === 'running').length;
  return Float64Array.of(
    r.ts,
    num(r.cpu.pct),
    num(r.cpu.load[0]),
    num(r.mem.usedMb),
    num(r.mem.totalMb),
    num(r.disk.usedGb),
    num(r.disk.totalGb),
    num(r.net.rxBps),
    num(r.net.txBps),
    running,
    r.apps.length,
  );
}

function toPoint(v: Float64Array): HistoryPoint {
  const p: Record<string, number | null> = {};
  for (let i = 0; i < N; i++) {
    const x = v[i];
    p[POINT_FIELDS[i]] = Number.isNaN(x) ? null : i === 0 ? x : Math.round(x * 100) / 100;
  }
  return p as HistoryPoint;
}
