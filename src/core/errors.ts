/**
 * The base of every expected (domain) error, and the core's own errors. Subsystems subclass
 * PlexusError in their own `errors.ts`. `code` is a stable machine-readable name
 * (`NAME_TAKEN`); `kind` is the broad class that the API maps to an HTTP status and the CLI to
 * an exit code. Only `src/api` knows about HTTP.
 */
export type ErrorKind =
  | 'invalid' // the caller sent something wrong: fix the input
  | 'not_found' // the named thing does not exist
  | 'conflict' // the request clashes with current state (name taken, already exists)
  | 'unauthenticated' // no or bad credentials
  | 'denied' // credentials fine, not allowed
  | 'unavailable' // a peer or dependency cannot be reached right now: try again
  | 'too_large' // a size limit was hit
  | 'internal'; // a bug or an environment problem

/** An expected failure with a one-line, actionable message. */
export class PlexusError extends Error {
  override name = 'PlexusError';
  readonly code: string;
  readonly kind: ErrorKind;
  constructor(code: string, message: string, kind: ErrorKind = 'invalid', options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.kind = kind;
  }
}

/** True for errors whose message is meant for the user (no stack trace needed). */
export function isPlexusError(err: unknown): err is PlexusError {
  return err instanceof Error && typeof (err as PlexusError).code === 'string' && 'kind' in err;
}

/** The `{code, message}` shape sent over the API and the control socket. */
export interface ErrorBody {
  code: string;
  message: string;
  kind?: ErrorKind;
}

/** Turns any thrown value into an `ErrorBody`; unknown errors become INTERNAL without internals. */
export function toErrorBody(err: unknown): ErrorBody {
  if (isPlexusError(err)) return { code: err.code, message: err.message, kind: err.kind };
  return { code: 'INTERNAL', message: 'internal error; see the agent log', kind: 'internal' };
}

/** A message that should be JSON is not. Transports subclass it to say which message it was. */
export class BadJsonError extends PlexusError {
  override name = 'BadJsonError';
  constructor(message = 'malformed JSON message') {
    super('BAD_JSON', message, 'invalid');
  }
}

/** An NDJSON line was longer than the limit. */
export class LineTooLongError extends PlexusError {
  override name = 'LineTooLongError';
  constructor(max: number) {
    super('LINE_TOO_LONG', `a message line exceeded ${max} bytes`, 'too_large');
  }
}

/** The action name is not registered. */
export class UnknownActionError extends PlexusError {
  override name = 'UnknownActionError';
  constructor(action: string) {
    super(
      'UNKNOWN_ACTION',
      `unknown action '${action}'; is the agent the same version as the CLI?`,
      'not_found',
    );
  }
}

/** An action's arguments do not match its schema; `detail` names the first bad field. */
export class InvalidArgumentError extends PlexusError {
  override name = 'InvalidArgumentError';
  constructor(action: string, detail: string) {
    super('INVALID_ARGUMENT', `${action}: ${detail}`, 'invalid');
  }
}
