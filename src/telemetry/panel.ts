/**
 * Heartbeats to an external panel (issue 4, docs/telemetry.md: optional panel push). Every interval the
 * agent POSTs one beat with `Authorization: Bearer TOKEN`. While the panel is unreachable (network
 * error, timeout, 5xx, 408, 429) beats wait in a queue of at most PANEL_QUEUE_MAX, oldest dropped
 * first, and are sent oldest first once it answers. A reply's `next_heartbeat_seconds` sets the
 * next delay. Other 4xx answers (bad token) drop that beat: retrying cannot fix them.
 */
import type { Logger } from '../logging/index.ts';
import {
  PANEL_MAX_INTERVAL_S,
  PANEL_MAX_REPLY_BYTES,
  PANEL_MIN_INTERVAL_S,
  PANEL_QUEUE_MAX,
  PANEL_TIMEOUT_MS,
} from './constants.ts';

/** The heartbeat JSON, exactly as the panel expects it (issue 4). */
export interface PanelBeat {
  server_id: string;
  /** ISO 8601, when the beat was taken (queued beats keep their own time). */
  timestamp: string;
  metrics: {
    cpu_percent: number | null;
    ram_used_mb: number | null;
    ram_total_mb: number | null;
    disk_used_gb: number | null;
    disk_total_gb: number | null;
    load_average: number | null;
    /** Bytes received since boot on all non-loopback interfaces (a counter; rates are derived). */
    network_in_bytes: number | null;
    network_out_bytes: number | null;
  };
  containers: {
    id: string;
    name: string;
    image: string | null;
    status: string;
    health: string | null;
    uptime_seconds: number | null;
    cpu_percent: number | null;
    memory_mb: number | null;
  }[];
  agent_version: string;
}

/** Options of the pusher. */
export interface PanelPusherInit {
  url: string;
  token: string;
  intervalS: number;
  /** Per-request deadline; default PANEL_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Queue cap; default PANEL_QUEUE_MAX. */
  queueMax?: number;
}

/** What the pusher needs. */
export interface PanelPusherComponents {
  logger: Logger;
  /** Builds the current beat. */
  beat(): Promise<PanelBeat>;
}

/** Counters, for /metrics and tests. */
export interface PanelStats {
  sent: number;
  failed: number;
  dropped: number;
  queued: number;
  nextInS: number;
}

/** Pushes heartbeats to the panel on its own timer. */
export class PanelPusher {
  readonly #init: PanelPusherInit;
  readonly #c: PanelPusherComponents;
  readonly #queue: PanelBeat[] = [];
  readonly #stats = { sent: 0, failed: 0, dropped: 0 };
  #timer: NodeJS.Timeout | undefined;
  #inflight: AbortController | undefined;
  #nextS: number;
  #down = false;
  #stopped = false;

  constructor(init: PanelPusherInit, components: PanelPusherComponents) {
    this.#init = init;
    this.#c = components;
    this.#nextS = init.intervalS;
  }

  /** Sends the first beat shortly (once the collector has a cpu reading), then every interval. */
  start(firstDelayMs = 1_000): void {
    this.#schedule(firstDelayMs);
  }

  /** Stops the timer and abandons an in-flight request. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#inflight?.abort();
  }

  /** Counters and queue length. */
  stats(): PanelStats {
    return { ...this.#stats, queued: this.#queue.length, nextInS: this.#nextS };
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), ms);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      const beat = await this.#c.beat();
      // The backlog goes first, oldest first; only if the panel took all of it is it worth
      // sending the fresh beat now (one failed attempt per tick while the panel is down).
      if (this.#queue.length > 0) await this.flush();
      const reachable = this.#queue.length === 0;
      this.enqueue(beat);
      if (reachable) await this.flush();
    } catch (err) {
      this.#c.logger.warn({ err }, 'panel heartbeat failed unexpectedly');
    } finally {
      this.#schedule(this.#nextS * 1000);
    }
  }

  /** Adds a beat to the queue, dropping the oldest beyond the cap. */
  enqueue(beat: PanelBeat): void {
    this.#queue.push(beat);
    const max = this.#init.queueMax ?? PANEL_QUEUE_MAX;
    while (this.#queue.length > max) {
      this.#queue.shift();
      this.#stats.dropped++;
    }
  }

  /** Sends queued beats oldest first until one fails. */
  async flush(): Promise<void> {
    while (this.#queue.length > 0 && !this.#stopped) {
      const outcome = await this.#post(this.#queue[0]);
      if (outcome === 'retry') return;
      this.#queue.shift();
      if (outcome === 'rejected') this.#stats.dropped++;
    }
  }

  async #post(beat: PanelBeat): Promise<'ok' | 'retry' | 'rejected'> {
    const ctl = new AbortController();
    this.#inflight = ctl;
    const timer = setTimeout(() => ctl.abort(), this.#init.timeoutMs ?? PANEL_TIMEOUT_MS);
    try {
      const res = await fetch(this.#init.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.#init.token}` },
        body: JSON.stringify(beat),
        signal: ctl.signal,
        redirect: 'error',
      });
      const text = await readCapped(res);
      if (res.ok) {
        this.#stats.sent++;
        this.#honourReply(text);
        if (this.#down) {
          this.#down = false;
          this.#c.logger.info(
            { queued: this.#queue.length - 1 },
            'panel answers again; flushing queued heartbeats',
          );
        }
        return 'ok';
      }
      this.#stats.failed++;
      if (res.status >= 500 || res.status === 408 || res.status === 429) {
        this.#markDown(`HTTP ${res.status}`);
        return 'retry';
      }
      // 4xx: the panel understood and refused (bad token, bad shape); retrying cannot help.
      this.#markDown(`HTTP ${res.status}; heartbeat dropped (check panel.token)`);
      return 'rejected';
    } catch (err) {
      this.#stats.failed++;
      this.#markDown(
        ctl.signal.aborted
          ? 'timed out'
          : (((err as Error).cause as Error)?.message ?? (err as Error).message),
      );
      return 'retry';
    } finally {
      clearTimeout(timer);
      this.#inflight = undefined;
    }
  }

  #honourReply(text: string): void {
    let next: unknown;
    try {
      next = (JSON.parse(text) as { next_heartbeat_seconds?: unknown })?.next_heartbeat_seconds;
    } catch {
      return; // an empty or non-JSON 2xx is fine: keep the interval
    }
    if (typeof next === 'number' && Number.isFinite(next)) {
      this.#nextS = Math.min(PANEL_MAX_INTERVAL_S, Math.max(PANEL_MIN_INTERVAL_S, next));
    }
  }

  /** Warns once per outage, not once per beat. */
  #markDown(reason: string): void {
    if (this.#down) return;
    this.#down = true;
    this.#c.logger.warn(
      { url: redact(this.#init.url), reason },
      'panel unreachable; queueing heartbeats (at most 10)',
    );
  }
}

/** Reads at most PANEL_MAX_REPLY_BYTES of a reply body. */
async function readCapped(res: Response): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > PANEL_MAX_REPLY_BYTES) break;
      chunks.push(value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The URL without credentials or query (which may hold a secret) for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
