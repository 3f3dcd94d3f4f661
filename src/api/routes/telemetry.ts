/**
 * `GET /metrics` (Prometheus text format) and `GET /v1/telemetry?node=NAME&since=TS
 * [&resolution=fine|coarse]` (history for charts). Both tell who runs what on every node, so
 * neither is open (issue 12): /metrics needs the bearer token of `api.metricsToken` (and is off
 * without one), /v1/telemetry a signed request for `telemetry.history` with the query's args
 * (signed-request.ts), the same operation a signed command through POST /v1/commands runs.
 */
import { bearerMatches } from '../authorization.ts';
import { BadSinceError, MetricsDisabledError, MissingNodeError, UnauthenticatedError } from '../errors.ts';
import type { Router } from '../http.ts';
import { runSignedRequest, type SignedRequestCommands, signedEnvelopeOf } from '../signed-request.ts';

/** What the telemetry routes need. */
export interface TelemetryRoutesDeps {
  /** Checks the signed GET and runs `telemetry.history`. */
  commands: SignedRequestCommands;
  /** Renders the Prometheus exposition. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** The bearer token /metrics requires (`api.metricsToken`); /metrics is off without one. */
  metricsToken?: string;
}

const HISTORY_HINT =
  "GET /v1/telemetry needs 'Authorization: Plexus <envelope>', an operator's envelope for telemetry.history " +
  "with the query's args (docs/telemetry.md), or POST that command to /v1/commands (plexus --api URL --key FILE)";

/** Mounts /metrics and /v1/telemetry. */
export function mountTelemetryRoutes(router: Router, deps: TelemetryRoutesDeps): void {
  router.route('GET', '/metrics', async (req, res) => {
    if (!deps.metricsToken) throw new MetricsDisabledError();
    if (!bearerMatches(req.headers.authorization, deps.metricsToken))
      throw new UnauthenticatedError(
        "/metrics needs 'Authorization: Bearer <api.metricsToken>' (Prometheus: authorization.credentials)",
      );
    const { contentType, body } = await deps.metrics();
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });

  router.route('GET', '/v1/telemetry', async (req, res) => {
    const envelope = signedEnvelopeOf(req, deps.commands, HISTORY_HINT);
    const node = req.query.get('node');
    if (!node) throw new MissingNodeError();
    const sinceText = req.query.get('since');
    const resolution = req.query.get('resolution');
    // The args a signer writes for this query: absent parameters are absent keys.
    const args: Record<string, unknown> = { node };
    if (sinceText != null) args.since = parseSince(sinceText);
    if (resolution != null) args.resolution = resolution;
    return runSignedRequest(deps.commands, envelope, { action: 'telemetry.history', args }, req, res);
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
