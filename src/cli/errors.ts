/** CLI errors: printed as one line, with an exit code (1 failure, 2 bad usage). */

/** An expected CLI failure; only its message is printed. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Bad usage (exit 2). */
export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, 2);
  }
}

/**
 * The network's admin key is not known for an operator key, so the remote CLI cannot check who
 * answers; the message names the command that records it.
 */
export class AdminKeyUnknownError extends CliError {
  override name = 'AdminKeyUnknownError';
  readonly code = 'ADMIN_KEY_UNKNOWN';
}

/** A network record (KEY.network) or a network.json the CLI reads is unreadable or invalid. */
export class NetworkRecordError extends CliError {
  override name = 'NetworkRecordError';
  readonly code = 'NETWORK_RECORD_INVALID';
}

/** An agent could not prove it (or the node it answers for) is a member of the network. */
export class UntrustedAgentError extends CliError {
  override name = 'UntrustedAgentError';
  readonly code = 'UNTRUSTED_AGENT';
}

/** A reply frame is not signed by the node the command was addressed to. */
export class ForgedReplyError extends CliError {
  override name = 'ForgedReplyError';
  readonly code = 'FORGED_REPLY';
}

/** `plexus ui`'s local server refused a request from the page (docs/ui.md): an HTTP status and a code. */
export class UiRequestError extends CliError {
  override name = 'UiRequestError';
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
