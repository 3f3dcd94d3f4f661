/**
 * `GET /metrics` (Prometheus text format, unauthenticated like /health: the default listen is
 * loopback) and `GET /v1/telemetry?node=NAME&since=TS[&resolution=fine|coarse]` (history for
 * charts). The history route runs the `telemetry.history` action, so the same operation is
 * reachable as a signed command, and takes an `authorize` hook: the HTTP operator auth (issue 5)
 * plugs in there without touching this file's callers.
 */

import type { ActionRegistry, Caller } from '../../core/actions.ts';
import { ActionFailedError, BadSinceError, MissingNodeError } from '../errors.ts';
import type { ApiRequest, Router } from '../http.ts';

/** What the telemetry routes need. */
export interface TelemetryRoutesDeps {
  /** Runs `telemetry.history`. */
  actions: Pick<ActionRegistry, 'run'>;
  /** Renders the Prometheus exposition. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /**
   * Decides who is calling /v1/telemetry, or throws an `unauthenticated`/`denied` PlexusError.
   * Default: a read-only local caller, which is right only while the API listens on loopback.
   */
  authorize?(req: ApiRequest): Promise<Caller> | Caller;
}

const LOOPBACK_VIEWER: Caller = { kind: 'local', kid: 'http-loopback', role: 'viewer' };

/** Mounts /metrics and /v1/telemetry. */
export function mountTelemetryRoutes(router: Router, deps: TelemetryRoutesDeps): void {
  router.route('GET', '/metrics', async (_req, res) => {
    const { contentType, body } = await deps.metrics();
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });

  router.route('GET', '/v1/telemetry', async (req) => {
    const caller = deps.authorize ? await deps.authorize(req) : LOOPBACK_VIEWER;
    const node = req.query.get('node');
    if (!node) throw new MissingNodeError();
    const sinceText = req.query.get('since');
    const since = sinceText == null ? undefined : parseSince(sinceText);
    const resolution = req.query.get('resolution') ?? undefined;
    const frame = await deps.actions.run(
      'telemetry.history',
      { node, since, resolution },
      { caller, signal: AbortSignal.timeout(10_000), emit: async () => {}, input: (async function* () {})() },
    );
    if (frame.type === 'error') throw new ActionFailedError(frame.error);
    return frame.type === 'result' ? frame.result : {};
  });
}

/** `since` as epoch ms, epoch seconds or an ISO date. */
function parseSince(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    // Ten digits or fewer is seconds (until 2286); more is milliseconds.
    return text.length <= 10 ? n * 1000 : n;
  }
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new BadSinceError();
  return t;
}
