/** Health checks: an HTTP GET that answers 2xx/3xx, or a TCP connect, polled until a deadline. */
import { createConnection } from 'node:net';
import { http, https } from '../core/http-modules.ts';
import { HEALTH_PROBE_FAST_MS, HEALTH_PROBE_INTERVAL_MS, HEALTH_PROBE_TIMEOUT_MS } from './constants.ts';
import type { HealthCheck } from './spec.ts';

/** Runs one probe; resolves true when healthy. Never rejects. */
export function probe(check: HealthCheck, timeoutMs = HEALTH_PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    if (check.kind === 'tcp') {
      const s = createConnection({ host: check.host, port: check.port });
      const done = (ok: boolean) => {
        s.destroy();
        resolve(ok);
      };
      s.setTimeout(timeoutMs, () => done(false));
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
      return;
    }
    const req = (check.tls ? https().request : http.request)(
      {
        host: check.host,
        port: check.port,
        path: check.path,
        method: 'GET',
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        res.resume();
        resolve((res.statusCode ?? 500) < 400);
      },
    );
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

/** Why a wait for health ended. */
export type HealthOutcome = 'healthy' | 'timeout' | 'exited' | 'aborted';

/**
 * Probes until healthy, until `deadlineMs` passes, or until `stillRunning()` says the process
 * is gone (a crash during start fails fast instead of waiting out the timeout).
 */
export async function waitHealthy(
  check: HealthCheck,
  opts: {
    timeoutMs: number;
    stillRunning(): boolean;
    signal?: AbortSignal;
    onWait?(elapsedMs: number): void;
  },
): Promise<HealthOutcome> {
  const started = Date.now();
  let lastWait = 0;
  for (;;) {
    if (opts.signal?.aborted) return 'aborted';
    if (!opts.stillRunning()) return 'exited';
    const left = opts.timeoutMs - (Date.now() - started);
    if (left <= 0) return 'timeout';
    if (await probe(check, Math.min(HEALTH_PROBE_TIMEOUT_MS, left))) return 'healthy';
    // Progress for a TTY: a few updates a second are plenty, whatever the probe rate.
    if (opts.onWait && Date.now() - lastWait >= 250) {
      lastWait = Date.now();
      opts.onWait(lastWait - started);
    }
    // Most apps come up within a second: probe tightly then, gently after.
    const elapsed = Date.now() - started;
    await new Promise((r) =>
      setTimeout(r, elapsed < 1_000 ? HEALTH_PROBE_FAST_MS : HEALTH_PROBE_INTERVAL_MS),
    );
  }
}
