/**
 * Errors of the signed-command subsystem. Tests assert on `name` or `code`, never on the message.
 * Kept free of agent imports: the CLI loads it (through envelope.ts) to sign and check commands.
 */
import { BadJsonError, PlexusError } from '../core/errors.ts';

/**
 * An envelope, a reply frame or a command's input was refused. Every refusal of a signed command
 * is one of its subclasses, each with its own `code`.
 */
export class CommandRefusedError extends PlexusError {
  override name = 'CommandRefusedError';
}

// --- the envelope itself (envelope.ts) ---------------------------------------------------------

/** Not an envelope `{v:1, kid, payload, sig}`, or its payload lacks a field. */
export class BadEnvelopeError extends CommandRefusedError {
  override name = 'BadEnvelopeError';
  constructor(detail: string) {
    super('BAD_ENVELOPE', detail, 'invalid');
  }
}

/** The envelope's signature does not verify with the key it names. */
export class BadSignatureError extends CommandRefusedError {
  override name = 'BadSignatureError';
  constructor() {
    super(
      'BAD_SIGNATURE',
      'command signature does not verify: altered or signed by another key',
      'unauthenticated',
    );
  }
}

/** `exp - iat` is longer than allowed (or not positive). */
export class TtlTooLongError extends CommandRefusedError {
  override name = 'TtlTooLongError';
  constructor(maxTtlS: number) {
    super('TTL_TOO_LONG', `a command may be valid for at most ${maxTtlS} s (exp - iat)`, 'invalid');
  }
}

/** `iat` lies further in the future than the allowed clock skew. */
export class FutureDatedError extends CommandRefusedError {
  override name = 'FutureDatedError';
  constructor() {
    super(
      'FUTURE_DATED',
      'command is dated in the future: check the clock of the signing machine',
      'unauthenticated',
    );
  }
}

/** The command is past `exp`, or was issued too long ago. */
export class CommandExpiredError extends CommandRefusedError {
  override name = 'CommandExpiredError';
  constructor() {
    super(
      'EXPIRED',
      'command has expired: sign it again (check the clock of the signing machine)',
      'unauthenticated',
    );
  }
}

/** A reply frame is not signed by the target, or is out of order. */
export class ReplyTamperedError extends CommandRefusedError {
  override name = 'ReplyTamperedError';
  constructor(seq: number) {
    super(
      'REPLY_TAMPERED',
      `reply frame ${seq} is not signed by the target: a relaying node altered, reordered or forged it`,
      'unauthenticated',
    );
  }
}

/** The input frames are not the ones the operator signed. */
export class InputTamperedError extends CommandRefusedError {
  override name = 'InputTamperedError';
  constructor(why: string) {
    super('INPUT_TAMPERED', why, 'unauthenticated');
  }
}

// --- authentication and authorisation (authorize.ts) -------------------------------------------

/** The envelope names a key that is not an operator of this network. */
export class UnknownKeyError extends CommandRefusedError {
  override name = 'UnknownKeyError';
  constructor(kid: string) {
    super('UNKNOWN_KEY', `key ${kid} is not an operator of this network`, 'unauthenticated');
  }
}

/** The envelope's key was revoked. */
export class KeyRevokedError extends CommandRefusedError {
  override name = 'KeyRevokedError';
  constructor(kid: string) {
    super('KEY_REVOKED', `key ${kid} was revoked`, 'unauthenticated');
  }
}

/** The grant of the envelope's key has expired. */
export class KeyExpiredError extends CommandRefusedError {
  override name = 'KeyExpiredError';
  constructor(kid: string) {
    super('KEY_EXPIRED', `the grant of key ${kid} has expired`, 'unauthenticated');
  }
}

/** The key's role may not run the action's access class. */
export class ForbiddenRoleError extends CommandRefusedError {
  override name = 'ForbiddenRoleError';
  constructor(role: string, action: string, access: string) {
    super(
      'FORBIDDEN_ROLE',
      `role '${role}' may not run ${action} (${access}); ask an admin for a wider grant`,
      'denied',
    );
  }
}

/** A tenant-limited key reaches outside its tenant. */
export class ForbiddenTenantError extends CommandRefusedError {
  override name = 'ForbiddenTenantError';
  constructor(keyTenant: string, action: string, touched: string | undefined) {
    super(
      'FORBIDDEN_TENANT',
      `this key is limited to tenant '${keyTenant}'; ${action} touches ${touched ? `tenant '${touched}'` : 'the node itself'}`,
      'denied',
    );
  }
}

// --- the command service (service.ts) ----------------------------------------------------------

/** Too many commands in flight on this node. */
export class CommandsBusyError extends CommandRefusedError {
  override name = 'CommandsBusyError';
  constructor(max: number) {
    super('BUSY', `over ${max} commands in flight on this node; retry shortly`, 'unavailable');
  }
}

/** A relay passed on a command signed for another node than this one. */
export class WrongTargetError extends CommandRefusedError {
  override name = 'WrongTargetError';
  constructor() {
    super('WRONG_TARGET', 'this command was signed for another node', 'denied');
  }
}

/** The command's target is not a member of this network. */
export class UnknownTargetError extends CommandRefusedError {
  override name = 'UnknownTargetError';
  constructor(target: string) {
    super('UNKNOWN_TARGET', `target ${target} is not a member of this network`, 'not_found');
  }
}

/** The signed action is not served by this node. */
export class UnknownCommandActionError extends CommandRefusedError {
  override name = 'UnknownCommandActionError';
  constructor(action: string) {
    super('UNKNOWN_ACTION', `unknown action '${action}'`, 'not_found');
  }
}

/** A signed request's envelope is for another action or other args than the request asks for. */
export class RequestMismatchError extends CommandRefusedError {
  override name = 'RequestMismatchError';
  constructor(action: string) {
    super(
      'REQUEST_MISMATCH',
      `the signed envelope must be for ${action} with exactly the request's arguments; sign a new one`,
      'invalid',
    );
  }
}

/** The command id was seen before. */
export class ReplayError extends CommandRefusedError {
  override name = 'ReplayError';
  constructor(id: string) {
    super('REPLAY', `command ${id} was already received: replays are refused`, 'denied');
  }
}

/** An envelope sent to open a session does not declare live input (`input: {live: true}`). */
export class NotLiveInputError extends CommandRefusedError {
  override name = 'NotLiveInputError';
  constructor(action: string) {
    super(
      'NOT_A_SESSION',
      `${action} is not signed as a session (input: {live: true}); post it to /v1/commands`,
      'invalid',
    );
  }
}

// --- the mesh relay protocol (relay-protocol.ts) -----------------------------------------------

/** A frame on /plexus/cmd/1.0.0 exceeded its size limit. */
export class FrameTooLargeError extends PlexusError {
  override name = 'FrameTooLargeError';
  constructor() {
    super('FRAME_TOO_LARGE', 'a command frame exceeded its size limit', 'too_large');
  }
}

/** A frame on /plexus/cmd/1.0.0 is not JSON. */
export class BadFrameJsonError extends BadJsonError {
  override name = 'BadFrameJsonError';
  constructor() {
    super('a command frame is not valid JSON');
  }
}

/** The other node did not answer in time. */
export class RelayTimeoutError extends PlexusError {
  override name = 'RelayTimeoutError';
  constructor() {
    super('RELAY_TIMEOUT', 'the other node did not answer in time', 'unavailable');
  }
}

/** The command stream broke, or ended without a final frame. */
export class RelayFailedError extends PlexusError {
  override name = 'RelayFailedError';
  constructor(message: string) {
    super('RELAY_FAILED', message, 'unavailable');
  }
}

/** No stream to the target could be opened. */
export class TargetUnreachableError extends PlexusError {
  override name = 'TargetUnreachableError';
  constructor(detail: string) {
    super('PEER_UNREACHABLE', `cannot reach the target node: ${detail}`, 'unavailable');
  }
}

// --- exec (exec.ts) ----------------------------------------------------------------------------

/** The command to exec does not exist. */
export class ExecNotFoundError extends PlexusError {
  override name = 'ExecNotFoundError';
  constructor(cmd: string) {
    super('EXEC_NOT_FOUND', `command not found: ${cmd}`, 'not_found');
  }
}

/** The command to exec could not be started. */
export class ExecFailedError extends PlexusError {
  override name = 'ExecFailedError';
  constructor(cmd: string, detail: string) {
    super('EXEC_FAILED', `cannot run ${cmd}: ${detail}`, 'invalid');
  }
}

// --- operator grants (operator-actions.ts) -----------------------------------------------------

/** A grant was not accepted: not signed by the admin key, or it names the admin key itself. */
export class GrantRefusedError extends PlexusError {
  override name = 'GrantRefusedError';
  constructor() {
    super(
      'GRANT_REFUSED',
      'the grant is not signed by the admin key, or names the admin key itself',
      'denied',
    );
  }
}

/** A grant names a key that was revoked: revoked keys stay revoked. */
export class GrantOfRevokedKeyError extends PlexusError {
  override name = 'GrantOfRevokedKeyError';
  constructor(kid: string) {
    super(
      'KEY_REVOKED',
      `key ${kid} was revoked; generate a new key with 'plexus operator keygen'`,
      'denied',
    );
  }
}

/** The admin key cannot be revoked (it is the root of every grant). */
export class CannotRevokeAdminError extends PlexusError {
  override name = 'CannotRevokeAdminError';
  constructor() {
    super('CANNOT_REVOKE_ADMIN', 'the admin key cannot be revoked', 'invalid');
  }
}

/** A revocation was not accepted: not about an operator key, or not signed by the admin key. */
export class RevocationRefusedError extends PlexusError {
  override name = 'RevocationRefusedError';
  constructor(why: 'not-operator' | 'not-signed') {
    super(
      'REVOCATION_REFUSED',
      why === 'not-operator'
        ? 'not a revocation of an operator key'
        : 'the revocation is not signed by the admin key',
      why === 'not-operator' ? 'invalid' : 'denied',
    );
  }
}

/** A signed record's payload is not JSON. */
export class MalformedRecordError extends PlexusError {
  override name = 'MalformedRecordError';
  constructor() {
    super('MALFORMED', 'signed record payload is not JSON', 'invalid');
  }
}
