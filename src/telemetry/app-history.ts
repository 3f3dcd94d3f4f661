/**
 * The last hour of this node's own apps' CPU and memory, for the dashboard's per-app charts
 * (docs/ui.md). The node history (history.ts) keeps node figures of every node; per-app figures
 * of every node would multiply that by every app in the fleet on every agent, so each node keeps
 * only its own apps' (from its own records) and the page asks the node itself, relayed like any
 * command. In memory, for history.ts's reasons; bounded: one slot per interval over
 * FINE_HISTORY_SPAN_S (at most MAX_FINE_POINTS), at most MAX_RECORD_APPS apps, an app gone for
 * a whole span is dropped, and nothing is allocated until a record carries an app, so an agent
 * without apps holds none of it.
 */
import type { TelemetryRecord } from '../mesh/index.ts';
import { MAX_RECORD_APPS } from '../mesh/index.ts';
import { fineSlots } from './history.ts';

/** One app's figures, aligned with `ts`; `null` where unknown or the app was absent. */
export interface AppSeries {
  cpuPct: (number | null)[];
  memMb: (number | null)[];
}

/** The answer of `telemetry.history.apps`: shared timestamps (epoch ms) and each app's columns. */
export interface AppHistoryResult {
  node: string;
  stepS: number;
  ts: number[];
  apps: Record<string, AppSeries>;
}

interface Columns {
  cpu: Float32Array;
  mem: Float32Array;
  /** Slots written since the app last appeared in a record. */
  absent: number;
}

/** A ring of slots: shared timestamps, and per app a CPU and a memory column (NaN = unknown). */
export class AppHistory {
  readonly #intervalMs: number;
  readonly #cap: number;
  #ts: Float64Array | undefined;
  readonly #apps = new Map<string, Columns>();
  #head = 0;
  #size = 0;
  #node = '';

  constructor(init: { intervalMs: number }) {
    this.#intervalMs = init.intervalMs;
    this.#cap = fineSlots(init.intervalMs);
  }

  /** Records one of this node's own records. */
  add(r: TelemetryRecord): void {
    if (!this.#ts && r.apps.length === 0) return;
    this.#ts ??= new Float64Array(this.#cap);
    this.#node = r.node;
    const lastAt = (this.#head - 1 + this.#cap) % this.#cap;
    const last = this.#size > 0 ? this.#ts[lastAt] : undefined;
    if (last !== undefined && r.ts < last) return; // out of order (clock step): skip
    // An immediate publish (app change) inside the same interval replaces the newest slot.
    const replace = last !== undefined && r.ts - last < this.#intervalMs / 2;
    const slot = replace ? lastAt : this.#head;
    this.#ts[slot] = r.ts;
    const seen = new Set<string>();
    for (const a of r.apps) {
      let c = this.#apps.get(a.name);
      if (!c) {
        if (this.#apps.size >= MAX_RECORD_APPS) continue;
        c = {
          cpu: new Float32Array(this.#cap).fill(Number.NaN),
          mem: new Float32Array(this.#cap).fill(Number.NaN),
          absent: 0,
        };
        this.#apps.set(a.name, c);
      }
      c.cpu[slot] = a.cpuPct ?? Number.NaN;
      c.mem[slot] = a.memMb ?? Number.NaN;
      c.absent = 0;
      seen.add(a.name);
    }
    for (const [name, c] of this.#apps) {
      if (seen.has(name)) continue;
      c.cpu[slot] = Number.NaN;
      c.mem[slot] = Number.NaN;
      if (!replace && ++c.absent >= this.#cap) this.#apps.delete(name);
    }
    if (!replace) {
      this.#head = (this.#head + 1) % this.#cap;
      if (this.#size < this.#cap) this.#size++;
    }
  }

  /** The slots with ts ≥ `since` (epoch ms), oldest first. */
  query(since: number): AppHistoryResult {
    const slots: number[] = [];
    for (let i = 0; i < this.#size; i++) {
      const at = (this.#head - this.#size + i + this.#cap) % this.#cap;
      if (this.#ts![at] >= since) slots.push(at);
    }
    const col = (a: Float32Array) =>
      slots.map((s) => (Number.isNaN(a[s]) ? null : Math.round(a[s] * 100) / 100));
    const apps: Record<string, AppSeries> = {};
    for (const [name, c] of this.#apps) apps[name] = { cpuPct: col(c.cpu), memMb: col(c.mem) };
    return { node: this.#node, stepS: this.#intervalMs / 1000, ts: slots.map((s) => this.#ts![s]), apps };
  }
}
