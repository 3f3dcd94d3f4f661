/**
 * Host figures for the telemetry record: cpu %, cores, load, memory, root disk and network rates.
 * On Linux they come straight from /proc and statfs (a few small reads, no child processes), which
 * is what keeps a 5 s cadence far under 1 % of a core (bench/telemetry-collect.ts). Elsewhere
 * (macOS, BSD) systeminformation supplies them. A /proc file that cannot be read is logged once
 * at warn and its figures become `null` (unknown) — the record still goes out.
 */
import { readFile, statfs } from 'node:fs/promises';
import { availableParallelism, loadavg, platform } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../logging/index.ts';
import type { TelemetryRecord } from '../mesh/index.ts';
import { MIN_SAMPLE_GAP_MS } from './constants.ts';

/** The host part of a record, plus cumulative network counters (for the panel). */
export interface HostSample {
  cpu: TelemetryRecord['cpu'];
  mem: TelemetryRecord['mem'];
  disk: TelemetryRecord['disk'];
  net: TelemetryRecord['net'];
  /** Bytes received/sent on all non-loopback interfaces since boot (null if unknown). */
  netTotals: { rxBytes: number | null; txBytes: number | null };
}

/** Options of the collector. */
export interface SystemCollectorInit {
  /** Where procfs is mounted (tests point it at a fixture directory). Default `/proc`. */
  procRoot?: string;
  /** The filesystem whose usage is reported. Default `/` (the root disk). */
  diskPath?: string;
  /** Use /proc (default on Linux) or systeminformation. */
  source?: 'proc' | 'systeminformation';
}

interface CpuTimes {
  busy: number;
  total: number;
}

const MB = 1024 * 1024;
const GB = 1024 * MB;
const round1 = (n: number) => Math.round(n * 10) / 10;
const round2 = (n: number) => Math.round(n * 100) / 100;

/** Samples host figures; rates are computed between consecutive samples. */
export class SystemCollector {
  readonly #procRoot: string;
  readonly #diskPath: string;
  readonly #source: 'proc' | 'systeminformation';
  readonly #logger: Logger;
  readonly #warned = new Set<string>();
  readonly #cores = availableParallelism();
  #prevCpu: CpuTimes | undefined;
  #prevNet: { rx: number; tx: number; at: number } | undefined;
  #last: HostSample | undefined;
  #lastAt = 0;

  constructor(init: SystemCollectorInit, components: { logger: Logger }) {
    this.#procRoot = init.procRoot ?? '/proc';
    this.#diskPath = init.diskPath ?? '/';
    this.#source = init.source ?? (platform() === 'linux' ? 'proc' : 'systeminformation');
    this.#logger = components.logger;
  }

  /** The current figures; reuses the last sample if it is younger than MIN_SAMPLE_GAP_MS. */
  async sample(now = Date.now()): Promise<HostSample> {
    if (this.#last && now - this.#lastAt < MIN_SAMPLE_GAP_MS) return this.#last;
    const s = this.#source === 'proc' ? await this.#fromProc(now) : await this.#fromSi(now);
    this.#last = s;
    this.#lastAt = now;
    return s;
  }

  async #fromProc(now: number): Promise<HostSample> {
    const [stat, loadText, meminfo, netdev, disk] = await Promise.all([
      this.#read('stat'),
      this.#read('loadavg'),
      this.#read('meminfo'),
      this.#read('net/dev'),
      this.#disk(),
    ]);
    const cpuNow = stat === undefined ? undefined : parseCpuTimes(stat);
    const load = loadText === undefined ? undefined : parseLoad(loadText);
    const mem = meminfo === undefined ? undefined : parseMeminfo(meminfo);
    const net = netdev === undefined ? undefined : parseNetDev(netdev);
    return {
      cpu: {
        pct: this.#cpuPct(cpuNow),
        cores: this.#cores,
        load: load ?? [null, null, null],
      },
      mem: mem ?? { usedMb: null, totalMb: null },
      disk,
      net: this.#netRates(net, now),
      netTotals: { rxBytes: net?.rx ?? null, txBytes: net?.tx ?? null },
    };
  }

  async #fromSi(now: number): Promise<HostSample> {
    // Loaded only where /proc is missing; it is heavy to import and spawns helpers on some OSes.
    const si = (await import('systeminformation')).default;
    const [cpu, mem, nets, disk] = await Promise.all([
      si.currentLoad().catch(() => undefined),
      si.mem().catch(() => undefined),
      si.networkStats('*').catch(() => undefined),
      this.#disk(),
    ]);
    const ifaces = (nets ?? []).filter((n) => !/^lo/.test(n.iface));
    const net = nets
      ? { rx: sum(ifaces.map((n) => n.rx_bytes)), tx: sum(ifaces.map((n) => n.tx_bytes)) }
      : undefined;
    const [l1, l5, l15] = loadavg();
    return {
      cpu: {
        pct: cpu ? clampPct(round1(cpu.currentLoad)) : null,
        cores: this.#cores,
        load: [round2(l1), round2(l5), round2(l15)],
      },
      mem: mem
        ? { usedMb: Math.round((mem.total - mem.available) / MB), totalMb: Math.round(mem.total / MB) }
        : { usedMb: null, totalMb: null },
      disk,
      net: this.#netRates(net, now),
      netTotals: { rxBytes: net?.rx ?? null, txBytes: net?.tx ?? null },
    };
  }

  #cpuPct(times: CpuTimes | undefined): number | null {
    if (!times) return null;
    const prev = this.#prevCpu;
    this.#prevCpu = times;
    if (!prev || times.total <= prev.total) return null;
    return clampPct(round1(((times.busy - prev.busy) / (times.total - prev.total)) * 100));
  }

  #netRates(net: { rx: number; tx: number } | undefined, now: number): TelemetryRecord['net'] {
    if (!net) return { rxBps: null, txBps: null };
    const prev = this.#prevNet;
    this.#prevNet = { ...net, at: now };
    if (!prev || now <= prev.at || net.rx < prev.rx || net.tx < prev.tx) return { rxBps: null, txBps: null };
    const s = (now - prev.at) / 1000;
    return { rxBps: Math.round((net.rx - prev.rx) / s), txBps: Math.round((net.tx - prev.tx) / s) };
  }

  async #disk(): Promise<TelemetryRecord['disk']> {
    try {
      const st = await statfs(this.#diskPath);
      const total = st.blocks * st.bsize;
      return { usedGb: round2(((st.blocks - st.bfree) * st.bsize) / GB), totalGb: round2(total / GB) };
    } catch (err) {
      this.#warnOnce(
        `statfs:${this.#diskPath}`,
        err,
        'cannot stat the root filesystem; disk figures unknown',
      );
      return { usedGb: null, totalGb: null };
    }
  }

  async #read(file: string): Promise<string | undefined> {
    const path = join(this.#procRoot, file);
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      this.#warnOnce(path, err, 'cannot read a /proc file; its telemetry figures are unknown');
      return undefined;
    }
  }

  #warnOnce(key: string, err: unknown, msg: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#logger.warn({ path: key, err: (err as Error).message }, msg);
  }
}

/** Busy and total jiffies from the aggregate `cpu` line of /proc/stat. */
export function parseCpuTimes(stat: string): CpuTimes | undefined {
  const line = stat.split('\n', 1)[0];
  if (!line?.startsWith('cpu ')) return undefined;
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (v.length < 4 || v.some((n) => !Number.isFinite(n))) return undefined;
  const total = sum(v);
  const idle = v[3] + (v[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/** The three load averages of /proc/loadavg. */
export function parseLoad(text: string): [number, number, number] | undefined {
  const v = text.trim().split(/\s+/).slice(0, 3).map(Number);
  if (v.length < 3 || v.some((n) => !Number.isFinite(n) || n < 0)) return undefined;
  return [round2(v[0]), round2(v[1]), round2(v[2])];
}

/** Used (total − available) and total memory in MB from /proc/meminfo. */
export function parseMeminfo(text: string): TelemetryRecord['mem'] | undefined {
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const total = kb('MemTotal');
  // MemAvailable (Linux ≥ 3.14) counts reclaimable cache; free+buffers+cached approximates it.
  const avail = kb('MemAvailable') ?? sum([kb('MemFree') ?? 0, kb('Buffers') ?? 0, kb('Cached') ?? 0]);
  if (total === undefined) return undefined;
  return { usedMb: Math.round((total - Math.min(avail, total)) / 1024), totalMb: Math.round(total / 1024) };
}

/** Received and sent bytes summed over every interface except loopback, from /proc/net/dev. */
export function parseNetDev(text: string): { rx: number; tx: number } | undefined {
  let rx = 0;
  let tx = 0;
  let seen = false;
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const iface = line.slice(0, colon).trim();
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (iface === 'lo' || f.length < 9 || !Number.isFinite(f[0]) || !Number.isFinite(f[8])) continue;
    rx += f[0];
    tx += f[8];
    seen = true;
  }
  return seen || text.includes('|') ? { rx, tx } : undefined;
}

function sum(v: number[]): number {
  let s = 0;
  for (const n of v) s += n;
  return s;
}

function clampPct(n: number): number {
  return Math.min(100, Math.max(0, n));
}
