/**
 * A bounded HTTP load loop on loopback, for the zero-downtime tests and bench/deploy-switch.ts:
 * GETs at a steady rate (or back to back) over fresh connections, until stopped or until its
 * request or time budget runs out. Every request's start, latency and outcome is kept.
 */
import { get } from 'node:http';

/** One request's outcome. */
export interface Sample {
  /** When it started (performance.now() ms). */
  at: number;
  ms: number;
  ok: boolean;
  /** Why it failed (status or error code). */
  error?: string;
}

/** Options of a load loop. */
export interface LoadOptions {
  port: number;
  path?: string;
  /** Requests started per second; 0 sends them back to back (`concurrency` at a time). */
  rate?: number;
  /** Requests in flight at most. */
  concurrency?: number;
  /** Stop after this many requests… */
  maxRequests: number;
  /** …or after this long, whichever comes first. */
  maxMs: number;
  /** One request may take this long before it counts as failed. */
  timeoutMs?: number;
}

/** A running load loop. */
export interface Load {
  /** Stops starting requests, waits for those in flight, returns every sample. */
  stop(): Promise<Sample[]>;
  /** Samples so far. */
  readonly samples: Sample[];
}

function once(port: number, path: string, timeoutMs: number): Promise<Sample> {
  const at = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      resolve({ at, ms: performance.now() - at, ok, ...(error ? { error } : {}) });
    };
    const req = get({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () =>
        done(res.statusCode === 200, res.statusCode === 200 ? undefined : `HTTP ${res.statusCode}`),
      );
      res.on('error', (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
  });
}

/** Starts a load loop on 127.0.0.1:`port`. */
export function startLoad(o: LoadOptions): Load {
  const samples: Sample[] = [];
  const path = o.path ?? '/info';
  const timeoutMs = o.timeoutMs ?? 5_000;
  const concurrency = o.concurrency ?? 4;
  const deadline = Date.now() + o.maxMs;
  let stopped = false;
  let started = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const more = () => !stopped && started < o.maxRequests && Date.now() < deadline;
  const fire = () => {
    started++;
    inFlight++;
    const p = once(o.port, path, timeoutMs).then((s) => {
      samples.push(s);
      inFlight--;
      pending.delete(p);
    });
    pending.add(p);
    return p;
  };
  let loop: Promise<void>;
  if (o.rate) {
    // Open loop at a steady rate: a slow answer does not slow the senders down (up to a cap).
    const gap = 1000 / o.rate;
    const t0 = performance.now();
    loop = (async () => {
      while (more()) {
        if (inFlight < concurrency) fire();
        const next = t0 + started * gap - performance.now();
        await new Promise((r) => setTimeout(r, Math.max(0, next)));
      }
    })();
  } else {
    loop = Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (more()) await fire();
      }),
    ).then(() => {});
  }
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
      await Promise.all(pending);
      return samples;
    },
  };
}

/** The failed samples, summarised as `code×count`. */
export function failures(samples: Sample[]): string {
  const by = new Map<string, number>();
  for (const s of samples) if (!s.ok) by.set(s.error ?? '?', (by.get(s.error ?? '?') ?? 0) + 1);
  return [...by].map(([k, n]) => `${k}×${n}`).join(', ');
}
