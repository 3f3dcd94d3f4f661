/**
 * The base of every expected (domain) error. Subsystems subclass it in their own `errors.ts`.
 * `code` is a stable machine-readable name (`NAME_TAKEN`); `kind` is the broad class that the API
 * maps to an HTTP status and the CLI to an exit code. Only `src/api` knows about HTTP.
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
