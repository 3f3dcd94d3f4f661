/** Errors of the mesh subsystem. Tests assert on `name` or `code`, never on the message. */
import { PlexusError } from '../core/errors.ts';

/** A join token is malformed, tampered, expired, revoked or used up. */
export class TokenError extends PlexusError {
  override name = 'TokenError';
}

/** Admission was refused by the admitting node. */
export class AdmissionError extends PlexusError {
  override name = 'AdmissionError';
}

/** A node name is unknown to the mesh. */
export class UnknownNodeError extends PlexusError {
  override name = 'UnknownNodeError';
  constructor(name: string) {
    super('UNKNOWN_NODE', `no node named '${name}' in this mesh; see 'plexus peers'`, 'not_found');
  }
}

/** A peer could not be reached. */
export class PeerUnreachableError extends PlexusError {
  override name = 'PeerUnreachableError';
  constructor(name: string, detail?: string) {
    super('PEER_UNREACHABLE', `cannot reach '${name}'${detail ? `: ${detail}` : ''}`, 'unavailable');
  }
}

/** The network keys are missing or broken. */
export class NetworkSetupError extends PlexusError {
  override name = 'NetworkSetupError';
}

/** An action needs the admin key, which this node does not hold. */
export class NotAdminError extends PlexusError {
  override name = 'NotAdminError';
  constructor(what: string) {
    super(
      'ADMIN_KEY_REQUIRED',
      `${what} needs the admin key (DATA/keys/admin.key); run it on the node where 'plexus init' ran`,
      'denied',
    );
  }
}

/** A frame on a mesh protocol was malformed or too large. */
export class ProtocolError extends PlexusError {
  override name = 'ProtocolError';
}

/** A signed membership record (member, admission or revocation) is malformed or invalid. */
export class MalformedRecordError extends PlexusError {
  override name = 'MalformedRecordError';
  constructor(message: string) {
    super('MALFORMED', message, 'invalid');
  }
}

/** A grant is malformed, not signed by the admin, or for a revoked key. */
export class GrantError extends PlexusError {
  override name = 'GrantError';
}

/** A `--listen` or `--door` flag of init or join is not a multiaddr. */
export class BadListenError extends PlexusError {
  override name = 'BadListenError';
  constructor(addr: string) {
    super('BAD_LISTEN', `${addr} is not a multiaddr (e.g. /ip4/0.0.0.0/tcp/7070)`, 'invalid');
  }
}

/** `mesh.revoke` was asked to revoke the node it runs on. */
export class CannotRevokeSelfError extends PlexusError {
  override name = 'CannotRevokeSelfError';
  constructor(name: string) {
    super(
      'CANNOT_REVOKE_SELF',
      `'${name}' is the node you are on; revoke it from another node that holds the admin key`,
      'invalid',
    );
  }
}

/** A token cannot be made: no join door is open here or on a reachable member. */
export class NoDoorError extends PlexusError {
  override name = 'NoDoorError';
  constructor() {
    super(
      'NO_DOOR',
      "no join door is open (mesh.door is 'off' here and no online member has one); set mesh.door to 'auto' in config.yaml and restart",
      'unavailable',
    );
  }
}

/** A swarm-key rotation record or key is forged, stale or does not match, or a key was refused. */
export class SwarmKeyError extends PlexusError {
  override name = 'SwarmKeyError';
}
