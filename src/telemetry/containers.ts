/**
 * Containers beside the apps (issue 18): where a Docker or Podman socket exists, each record
 * lists the engine's containers with their id, name, image, state, health, CPU and memory, from
 * the Engine API (engine-client.ts). A node without a socket reports none and logs nothing; an
 * engine that fails is logged once until it answers again. The list is capped (count and bytes)
 * so the record stays within the gossip limit, and what was left out is counted.
 */
import { statSync } from 'node:fs';
import type { Logger } from '../logging/index.ts';
import { MAX_RECORD_CONTAINERS, type TelemetryContainer } from '../mesh/index.ts';
import {
  CONTAINER_SOCKETS,
  ENGINE_MAX_LIST_BYTES,
  ENGINE_MAX_STATS_BYTES,
  ENGINE_STATS_CONCURRENCY,
  ENGINE_TIMEOUT_MS,
} from './constants.ts';
import { engineGet } from './engine-client.ts';

/** Bytes of JSON the containers of one record may take (of the record's 16 KiB). */
export const CONTAINERS_RECORD_BYTES = 4 * 1024;

/** Options of the collector; defaults in constants.ts. */
export interface ContainerCollectorInit {
  /** Engine sockets to look for, first found wins. */
  sockets?: string[];
  timeoutMs?: number;
  maxListBytes?: number;
  maxStatsBytes?: number;
  /** Most containers in a record, and the bytes they may take. */
  maxContainers?: number;
  maxBytes?: number;
}

/** What one sample adds to the record. */
export interface ContainersSample {
  containers: TelemetryContainer[];
  /** Containers the engine listed that were left out (caps, or entries it described badly). */
  omitted: number;
}

const STATES = new Set(['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead']);

interface Listed {
  id: string;
  name: string;
  image: string;
  state: TelemetryContainer['state'];
  health: TelemetryContainer['health'];
}

/** Lists the engine's containers with their figures. */
export class ContainerCollector {
  readonly #o: Required<ContainerCollectorInit>;
  readonly #logger: Logger;
  /** Each container's last CPU counters, for a CPU % between two samples. */
  readonly #prev = new Map<string, { total: number; system: number }>();
  #failing = false;

  constructor(init: ContainerCollectorInit, components: { logger: Logger }) {
    const rootless = process.env.XDG_RUNTIME_DIR ? [`${process.env.XDG_RUNTIME_DIR}/podman/podman.sock`] : [];
    this.#o = {
      sockets: init.sockets ?? [...CONTAINER_SOCKETS, ...rootless],
      timeoutMs: init.timeoutMs ?? ENGINE_TIMEOUT_MS,
      maxListBytes: init.maxListBytes ?? ENGINE_MAX_LIST_BYTES,
      maxStatsBytes: init.maxStatsBytes ?? ENGINE_MAX_STATS_BYTES,
      maxContainers: init.maxContainers ?? MAX_RECORD_CONTAINERS,
      maxBytes: init.maxBytes ?? CONTAINERS_RECORD_BYTES,
    };
    this.#logger = components.logger;
  }

  /** The engine socket in use, or undefined when the node has none. */
  socket(): string | undefined {
    return this.#o.sockets.find((p) => {
      try {
        return statSync(p).isSocket();
      } catch {
        return false;
      }
    });
  }

  /** The containers for the record; undefined when the node has no engine socket. */
  async sample(): Promise<ContainersSample | undefined> {
    const socket = this.socket();
    if (!socket) return undefined;
    let raw: unknown;
    try {
      raw = await engineGet(socket, '/containers/json?all=1', {
        timeoutMs: this.#o.timeoutMs,
        maxBytes: this.#o.maxListBytes,
      });
      if (!Array.isArray(raw)) throw new Error('the container list is not a list');
    } catch (err) {
      if (!this.#failing)
        this.#logger.warn({ socket, err: (err as Error).message }, 'cannot list containers');
      this.#failing = true;
      return { containers: [], omitted: 0 };
    }
    this.#failing = false;
    const listed = raw.map(parseListed);
    const valid = listed.filter((c): c is Listed => c !== undefined);
    // Running ones first (their figures matter most), then by name, so a capped list is stable.
    valid.sort(
      (a, b) => Number(b.state === 'running') - Number(a.state === 'running') || a.name.localeCompare(b.name),
    );
    const chosen: Listed[] = [];
    let bytes = 2;
    for (const c of valid.slice(0, this.#o.maxContainers)) {
      // Figures not known yet: budget them at their largest.
      const size = JSON.stringify({ ...c, cpuPct: 100_000.5, memMb: 16_777_216.5 }).length + 1;
      if (bytes + size > this.#o.maxBytes) break;
      bytes += size;
      chosen.push(c);
    }
    const figures = await this.#figures(socket, chosen);
    this.#retain(new Set(chosen.map((c) => c.id)));
    return {
      containers: chosen.map((c, i) => ({ ...c, ...figures[i] })),
      omitted: raw.length - chosen.length,
    };
  }

  async #figures(socket: string, chosen: Listed[]) {
    const out: { cpuPct: number | null; memMb: number | null }[] = chosen.map(() => ({
      cpuPct: null,
      memMb: null,
    }));
    let next = 0;
    const worker = async () => {
      while (next < chosen.length) {
        const i = next++;
        if (chosen[i].state !== 'running') continue;
        try {
          const stats = await engineGet(
            socket,
            `/containers/${chosen[i].id}/stats?stream=false&one-shot=true`,
            {
              timeoutMs: this.#o.timeoutMs,
              maxBytes: this.#o.maxStatsBytes,
            },
          );
          out[i] = this.#fromStats(chosen[i].id, stats);
        } catch {
          // One container's figures missing is not worth a log line every interval: null shows it.
        }
      }
    };
    await Promise.all(Array.from({ length: ENGINE_STATS_CONCURRENCY }, worker));
    return out;
  }

  /** CPU % since our last sample of it (of one core, as `docker stats`), memory without page cache. */
  #fromStats(id: string, stats: unknown): { cpuPct: number | null; memMb: number | null } {
    const s = (stats ?? {}) as Record<string, Record<string, unknown> | undefined>;
    const cpu = s.cpu_stats as
      | { cpu_usage?: { total_usage?: unknown }; system_cpu_usage?: unknown; online_cpus?: unknown }
      | undefined;
    const total = num(cpu?.cpu_usage?.total_usage);
    const system = num(cpu?.system_cpu_usage);
    const cpus = num(cpu?.online_cpus) ?? 1;
    let cpuPct: number | null = null;
    const prev = this.#prev.get(id);
    if (total !== null && system !== null) {
      if (prev && system > prev.system && total >= prev.total)
        cpuPct = round1(((total - prev.total) / (system - prev.system)) * cpus * 100);
      this.#prev.set(id, { total, system });
    }
    const mem = s.memory_stats as { usage?: unknown; stats?: Record<string, unknown> } | undefined;
    const usage = num(mem?.usage);
    // cgroup v2 names it inactive_file, v1 total_inactive_file: page cache the kernel can drop.
    const cache = num(mem?.stats?.inactive_file) ?? num(mem?.stats?.total_inactive_file) ?? 0;
    const memMb = usage === null ? null : round1(Math.max(0, usage - cache) / (1024 * 1024));
    return {
      cpuPct: cpuPct === null ? null : Math.min(cpuPct, 100_000),
      memMb: memMb === null ? null : Math.min(memMb, 16 * 1024 * 1024),
    };
  }

  #retain(ids: Set<string>): void {
    for (const id of this.#prev.keys()) if (!ids.has(id)) this.#prev.delete(id);
  }
}

/** One entry of `GET /containers/json`, checked; undefined when it is not what the API describes. */
export function parseListed(raw: unknown): Listed | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as { Id?: unknown; Names?: unknown; Image?: unknown; State?: unknown; Status?: unknown };
  if (typeof r.Id !== 'string' || !/^[0-9a-f]{12,64}$/.test(r.Id)) return undefined;
  const names = Array.isArray(r.Names) ? r.Names.filter((n): n is string => typeof n === 'string') : [];
  const name = clean(names[0]?.replace(/^\//, '') ?? '', 63);
  const image = clean(typeof r.Image === 'string' ? r.Image : '', 96);
  const state = typeof r.State === 'string' && STATES.has(r.State) ? (r.State as Listed['state']) : 'unknown';
  const status = typeof r.Status === 'string' ? r.Status.slice(0, 256) : '';
  const health: Listed['health'] = /\(healthy\)/.test(status)
    ? 'healthy'
    : /\(unhealthy\)/.test(status)
      ? 'unhealthy'
      : /health: starting/.test(status)
        ? 'starting'
        : 'none';
  return { id: r.Id.slice(0, 12), name, image, state, health };
}

/** Printable characters only, capped: names and images end up in terminals and Prometheus labels. */
function clean(s: string, max: number): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
