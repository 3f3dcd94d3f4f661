/**
 * Per-app figures for the record. The workload manager is the source of truth for which apps
 * exist and their state; this file adapts it to the record's `apps` list and fills cpu % and
 * memory from /proc/PID when the workload manager does not report them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TelemetryApp } from '../mesh/index.ts';
import { MIN_SAMPLE_GAP_MS } from './constants.ts';

/** What telemetry needs to know about one app (a subset of the workload manager's status). */
export interface AppSnapshot {
  name: string;
  status: TelemetryApp['status'];
  pid?: number | null;
  restarts?: number;
  release?: string | null;
  cpuPct?: number | null;
  memMb?: number | null;
  /** Seconds the current process has been running, for the panel. */
  uptimeS?: number | null;
  /** Health-check verdict, for the panel. */
  health?: 'healthy' | 'unhealthy' | 'starting' | 'none' | null;
}

/** Where app figures come from: the workload manager, once it is wired in daemon.ts. */
export interface AppSource {
  /** Every app on this node now. */
  list(): AppSnapshot[] | Promise<AppSnapshot[]>;
  /** Calls `listener` whenever an app changes state; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/**
 * The source used while no workload manager is wired into this agent: it honestly reports no
 * apps, and never changes.
 */
export const noWorkloads: AppSource = {
  list: () => [],
  onChange: () => () => {},
};

/** Linux clock ticks per second (`getconf CLK_TCK`); 100 on every mainstream architecture. */
const CLK_TCK = 100;
const PAGE_KB = 4;

/** Computes cpu % and RSS of processes from /proc/PID (for apps the source gives no figures for). */
export class ProcessSampler {
  readonly #procRoot: string;
  readonly #prev = new Map<number, { ticks: number; at: number; pct: number | null }>();

  constructor(procRoot = '/proc') {
    this.#procRoot = procRoot;
  }

  /** cpu % (of one core) since the last call for this pid, and resident memory in MB. */
  async sample(pid: number, now = Date.now()): Promise<{ cpuPct: number | null; memMb: number | null }> {
    let stat: string;
    let statm: string;
    try {
      [stat, statm] = await Promise.all([
        readFile(join(this.#procRoot, String(pid), 'stat'), 'utf8'),
        readFile(join(this.#procRoot, String(pid), 'statm'), 'utf8'),
      ]);
    } catch {
      // The process exited between the status read and now, or /proc is not there (not Linux).
      this.#prev.delete(pid);
      return { cpuPct: null, memMb: null };
    }
    // Fields after the command name, which is in parentheses and may contain spaces.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]); // utime + stime
    const rssPages = Number(statm.split(' ')[1]);
    const memMb = Number.isFinite(rssPages) ? Math.round(((rssPages * PAGE_KB) / 1024) * 10) / 10 : null;
    const prev = this.#prev.get(pid);
    if (prev && now - prev.at < MIN_SAMPLE_GAP_MS) return { cpuPct: prev.pct, memMb };
    let cpuPct: number | null = null;
    if (prev && Number.isFinite(ticks) && ticks >= prev.ticks && now > prev.at) {
      cpuPct = Math.round(((ticks - prev.ticks) / CLK_TCK / ((now - prev.at) / 1000)) * 1000) / 10;
    }
    this.#prev.set(pid, { ticks, at: now, pct: cpuPct });
    return { cpuPct, memMb };
  }

  /** Forgets pids not in `alive` (apps that stopped), so the map stays bounded. */
  retain(alive: Set<number>): void {
    for (const pid of this.#prev.keys()) if (!alive.has(pid)) this.#prev.delete(pid);
  }
}

/** Turns the source's snapshots into the record's `apps`, sampling /proc where figures are missing. */
export async function appsForRecord(
  apps: AppSnapshot[],
  sampler: ProcessSampler,
  max: number,
): Promise<TelemetryApp[]> {
  const out: TelemetryApp[] = [];
  const alive = new Set<number>();
  for (const a of apps.slice(0, max)) {
    const pid = a.pid && a.pid > 0 ? a.pid : null;
    let cpuPct = a.cpuPct ?? null;
    let memMb = a.memMb ?? null;
    if (pid && (a.cpuPct == null || a.memMb == null)) {
      alive.add(pid);
      const s = await sampler.sample(pid);
      cpuPct ??= s.cpuPct;
      memMb ??= s.memMb;
    }
    out.push({
      name: a.name.slice(0, 63),
      status: a.status,
      pid,
      cpuPct,
      memMb,
      restarts: a.restarts ?? 0,
      release: a.release ? a.release.slice(0, 64) : null,
    });
  }
  sampler.retain(alive);
  return out;
}
