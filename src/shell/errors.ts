/** Errors of interactive sessions (issue 16). */
import { type ErrorKind, PlexusError } from '../core/errors.ts';

/** Base of the shell subsystem's errors. */
export class ShellError extends PlexusError {
  override name = 'ShellError';
  constructor(code: string, message: string, kind: ErrorKind) {
    super(code, message, kind);
  }
}

/** The node has no pseudo-terminals to give (no /dev/ptmx, or openpty failed). */
export class PtyUnavailableError extends ShellError {
  override name = 'PtyUnavailableError';
  constructor(why: string) {
    super(
      'PTY_UNAVAILABLE',
      `this node cannot open a terminal: ${why}; 'exec' without -t still works`,
      'unavailable',
    );
  }
}

/** The user a session should run as does not exist on the node. */
export class UnknownShellUserError extends ShellError {
  override name = 'UnknownShellUserError';
  constructor(user: string) {
    super('UNKNOWN_USER', `no user '${user}' on this node`, 'not_found');
  }
}

/** Root was asked for by a key that is not an admin. */
export class RootShellDeniedError extends ShellError {
  override name = 'RootShellDeniedError';
  constructor(user: string) {
    super('ROOT_DENIED', `'${user}' is root: only an admin key may open a session as root`, 'denied');
  }
}

/** The agent is not root, so it can only run sessions as its own user. */
export class CannotSwitchUserError extends ShellError {
  override name = 'CannotSwitchUserError';
  constructor(user: string, self: string) {
    super(
      'CANNOT_SWITCH_USER',
      `the agent runs as '${self}', not root, so it cannot start a session as '${user}'`,
      'denied',
    );
  }
}

/** The user exists but cannot log in (its shell is nologin or false). */
export class NoLoginShellError extends ShellError {
  override name = 'NoLoginShellError';
  constructor(user: string, shell: string) {
    super(
      'NO_LOGIN_SHELL',
      `user '${user}' has no login shell (${shell}); pass a command after --`,
      'invalid',
    );
  }
}

/** Creating the default shell user failed. */
export class ShellUserSetupError extends ShellError {
  override name = 'ShellUserSetupError';
  constructor(user: string, why: string) {
    super('SHELL_USER_SETUP', `cannot create the shell user '${user}': ${why}`, 'internal');
  }
}

/** The node already runs as many sessions as `shell.maxSessions` allows. */
export class SessionLimitError extends ShellError {
  override name = 'SessionLimitError';
  constructor(max: number) {
    super(
      'SESSION_LIMIT',
      `this node already runs ${max} sessions (shell.maxSessions); try again later`,
      'unavailable',
    );
  }
}

/** An input frame that is not one of the session's frame types. */
export class BadSessionFrameError extends ShellError {
  override name = 'BadSessionFrameError';
  constructor(why: string) {
    super('BAD_SESSION_FRAME', `bad session input: ${why}`, 'invalid');
  }
}

/** An input frame over MAX_SESSION_CHUNK_BYTES. */
export class SessionFrameTooLargeError extends ShellError {
  override name = 'SessionFrameTooLargeError';
  constructor(max: number) {
    super('SESSION_FRAME_TOO_LARGE', `a session input frame carried over ${max} bytes`, 'too_large');
  }
}

/** The session's command could not be started. */
export class SessionSpawnError extends ShellError {
  override name = 'SessionSpawnError';
  constructor(cmd: string, why: string, notFound = false) {
    super(
      notFound ? 'EXEC_NOT_FOUND' : 'SPAWN_FAILED',
      `cannot start ${cmd}: ${why}`,
      notFound ? 'not_found' : 'internal',
    );
  }
}

/** No session, or no recording of it, by that id. */
export class UnknownSessionError extends ShellError {
  override name = 'UnknownSessionError';
  constructor(id: string, what = 'session') {
    super('UNKNOWN_SESSION', `no ${what} '${id}' on this node; see 'plexus audit sessions'`, 'not_found');
  }
}

/** A file operation of `plexus cp` failed on the node; the message is the tool's one line. */
export class FileTransferError extends ShellError {
  override name = 'FileTransferError';
  constructor(
    code: 'PATH_DENIED' | 'PATH_NOT_FOUND' | 'DISK_FULL' | 'FILE_CHANGED' | 'FILE_OP_FAILED',
    message: string,
  ) {
    const kind =
      code === 'PATH_DENIED'
        ? 'denied'
        : code === 'PATH_NOT_FOUND'
          ? 'not_found'
          : code === 'DISK_FULL'
            ? 'too_large'
            : code === 'FILE_CHANGED'
              ? 'conflict'
              : 'internal';
    super(code, message, kind);
  }
}

/** The bytes written do not hash to what the sender said it sent. */
export class ChecksumMismatchError extends ShellError {
  override name = 'ChecksumMismatchError';
  constructor(path: string) {
    super(
      'CHECKSUM_MISMATCH',
      `${path}: the copy's sha256 differs from the source's; nothing was replaced`,
      'invalid',
    );
  }
}

/**
 * The binary channel of a copy failed: its connection presented a wrong secret (or none), or
 * none came before it expired (transfer-channel.ts).
 */
export class TransferChannelError extends ShellError {
  override name = 'TransferChannelError';
  constructor(code: 'TRANSFER_REFUSED' | 'TRANSFER_EXPIRED' | 'TRANSFER_BROKEN', message: string) {
    super(code, message, code === 'TRANSFER_REFUSED' ? 'denied' : 'unavailable');
  }
}
