/**
 * Errors of the HTTP API and the control socket. Tests assert on `name` or `code`, never on the
 * message. The router maps every PlexusError to a status by its `kind` (http.ts).
 */
import { BadJsonError, type ErrorBody, PlexusError } from '../core/errors.ts';

/** No route has this path. */
export class RouteNotFoundError extends PlexusError {
  override name = 'RouteNotFoundError';
  constructor(path: string) {
    super('NOT_FOUND', `no route ${path}`, 'not_found');
  }
}

/** A route has this path, but not for this method. */
export class MethodNotAllowedError extends PlexusError {
  override name = 'MethodNotAllowedError';
  constructor(method: string, path: string) {
    super('METHOD_NOT_ALLOWED', `${method} is not supported on ${path}`, 'invalid');
  }
}

/** A request body that should be JSON is not. */
export class BadJsonBodyError extends BadJsonError {
  override name = 'BadJsonBodyError';
  constructor() {
    super('request body is not valid JSON');
  }
}

/** A request body (or the envelope line of one) is over its limit. */
export class BodyTooLargeError extends PlexusError {
  override name = 'BodyTooLargeError';
  constructor(maxBytes: number, what: 'body' | 'envelope' = 'body') {
    super(
      'BODY_TOO_LARGE',
      what === 'body' ? `request body over ${maxBytes} bytes` : `the envelope is over ${maxBytes} bytes`,
      'too_large',
    );
  }
}

/** A request body (or the envelope line of one) did not arrive in time: the slow-loris guard. */
export class BodyTimeoutError extends PlexusError {
  override name = 'BodyTimeoutError';
  constructor(timeoutMs: number, what: 'body' | 'envelope' = 'body') {
    super(
      'BODY_TIMEOUT',
      what === 'body'
        ? `request body not received within ${timeoutMs} ms`
        : `the envelope did not arrive within ${timeoutMs} ms`,
      'invalid',
    );
  }
}

/** The request is not what the endpoint expects; `hint` says what it does expect. */
export class BadRequestError extends PlexusError {
  override name = 'BadRequestError';
  constructor(hint: string) {
    super('BAD_REQUEST', hint, 'invalid');
  }
}

/** The input frames after a signed command's envelope stalled. */
export class UploadTimeoutError extends PlexusError {
  override name = 'UploadTimeoutError';
  constructor() {
    super('UPLOAD_TIMEOUT', 'the upload stalled', 'invalid');
  }
}

/** The input frames after a signed command's envelope are over their total limit. */
export class UploadTooLargeError extends PlexusError {
  override name = 'UploadTooLargeError';
  constructor(maxBytes: number) {
    super('UPLOAD_TOO_LARGE', `input over ${maxBytes} bytes`, 'too_large');
  }
}

/** `/v1/telemetry` was called without `?node=`. */
export class MissingNodeError extends PlexusError {
  override name = 'MissingNodeError';
  constructor() {
    super('MISSING_NODE', 'add ?node=NAME (see plexus peers)', 'invalid');
  }
}

/** `since` is neither epoch seconds, epoch ms nor an ISO date. */
export class BadSinceError extends PlexusError {
  override name = 'BadSinceError';
  constructor() {
    super('BAD_SINCE', 'since must be epoch seconds, epoch ms or an ISO date', 'invalid');
  }
}

/**
 * An action a route ran ended with an error frame; rethrown with the frame's own code, message
 * and kind so the router answers with the status that kind maps to.
 */
export class ActionFailedError extends PlexusError {
  override name = 'ActionFailedError';
  constructor(error: ErrorBody) {
    super(error.code, error.message, error.kind ?? 'invalid');
  }
}

/** `api.listen` is not `HOST:PORT`. */
export class BadAddressError extends PlexusError {
  override name = 'BadAddressError';
  constructor(text: string) {
    super('BAD_ADDRESS', `'${text}' is not HOST:PORT`, 'invalid');
  }
}

/** The HTTP API's address is taken. */
export class PortInUseError extends PlexusError {
  override name = 'PortInUseError';
  constructor(listen: string) {
    super('PORT_IN_USE', `HTTP API address ${listen} is in use; set api.listen or --api`, 'conflict');
  }
}

/** Another agent answers on the control socket: this data dir is taken. */
export class AgentRunningError extends PlexusError {
  override name = 'AgentRunningError';
  constructor(path: string) {
    super('AGENT_RUNNING', `another agent is already running on ${path}; stop it first`, 'conflict');
  }
}

/**
 * The request's Host header is not one this API serves: the DNS rebinding guard (issue 12). The
 * router answers it with 421 Misdirected Request, before any route runs.
 */
export class HostNotAllowedError extends PlexusError {
  override name = 'HostNotAllowedError';
  constructor(host: string | undefined) {
    super(
      'HOST_NOT_ALLOWED',
      host === undefined || host === ''
        ? 'the request has no Host header; send the address you connect to (an IP, localhost, or a name in api.hosts)'
        : `Host '${printable(host)}' is not served here (DNS rebinding guard): add the name to api.hosts in config.yaml (PLEXUS_API__HOSTS), or connect by IP address or localhost`,
      'denied',
    );
  }
}

/** The route needs credentials the request does not carry; `hint` says which. */
export class UnauthenticatedError extends PlexusError {
  override name = 'UnauthenticatedError';
  constructor(hint: string) {
    super('UNAUTHENTICATED', hint, 'unauthenticated');
  }
}

/** An `Authorization: Plexus …` header that does not hold a base64url JSON envelope. */
export class BadAuthorizationError extends PlexusError {
  override name = 'BadAuthorizationError';
  constructor() {
    super(
      'BAD_AUTHORIZATION',
      "the Authorization header must be 'Plexus ' and the base64url of a JSON command envelope",
      'unauthenticated',
    );
  }
}

/** `GET /metrics` is off because no `api.metricsToken` is configured. */
export class MetricsDisabledError extends PlexusError {
  override name = 'MetricsDisabledError';
  constructor() {
    super(
      'METRICS_DISABLED',
      '/metrics is off: set api.metricsToken in config.yaml (PLEXUS_API__METRICS_TOKEN) and send it as a bearer token',
      'not_found',
    );
  }
}

/** At most 64 printable ASCII characters of a header value, for a one-line message. */
function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}

/** The dashboard's assets are not in this installation (a checkout that never ran scripts/build). */
export class UiNotBuiltError extends PlexusError {
  override name = 'UiNotBuiltError';
  constructor() {
    super(
      'UI_NOT_BUILT',
      "this agent has no dashboard assets; run scripts/build (or use 'plexus ui')",
      'not_found',
    );
  }
}

/** An input POST names a session that is not open through this agent (it ended, or never was). */
export class SessionNotFoundError extends PlexusError {
  override name = 'SessionNotFoundError';
  constructor() {
    super(
      'SESSION_NOT_FOUND',
      'no session with this id is open through this agent (it ended, or was opened elsewhere)',
      'not_found',
    );
  }
}

/** A session's input is arriving faster than the node takes it. */
export class SessionInputBusyError extends PlexusError {
  override name = 'SessionInputBusyError';
  constructor() {
    super(
      'SESSION_INPUT_BUSY',
      'the session has too much input waiting: send it again shortly',
      'unavailable',
    );
  }
}

/** As many sessions as this agent carries are open. */
export class TooManySessionsError extends PlexusError {
  override name = 'TooManySessionsError';
  constructor(max: number) {
    super('TOO_MANY_SESSIONS', `at most ${max} sessions are open through one agent`, 'unavailable');
  }
}
