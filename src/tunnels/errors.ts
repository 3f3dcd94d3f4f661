/** Errors of the tunnels. Tests assert on `name` or `code`, never on the message. */
import { PlexusError } from '../core/errors.ts';

/** The named service is not exposed on that node. */
export class UnknownServiceError extends PlexusError {
  override name = 'UnknownServiceError';
  constructor(service: string, node: string) {
    super(
      'UNKNOWN_SERVICE',
      `no service '${service}' is exposed on ${node}; see 'plexus status' there or 'plexus expose'`,
      'not_found',
    );
  }
}

/** The port is not exposed on that node; only exposed ports are reachable from the mesh. */
export class PortNotExposedError extends PlexusError {
  override name = 'PortNotExposedError';
  constructor(port: number, node: string) {
    super(
      'PORT_NOT_EXPOSED',
      `port ${port} is not exposed on ${node}; run 'plexus expose NAME ${port}' there`,
      'denied',
    );
  }
}

/** The exposed port refused the connection (nothing listens there). */
export class TargetRefusedError extends PlexusError {
  override name = 'TargetRefusedError';
  constructor(what: string, detail?: string) {
    super('TARGET_REFUSED', `${what} refused the connection${detail ? ` (${detail})` : ''}`, 'unavailable');
  }
}

/** Too many tunnels at once (per peer or in total). */
export class TunnelLimitError extends PlexusError {
  override name = 'TunnelLimitError';
  constructor(detail: string) {
    super('TUNNEL_LIMIT', `too many tunnels: ${detail}; try again later`, 'unavailable');
  }
}

/** A forward target is not `service.node` or `node:port`. */
export class InvalidTargetError extends PlexusError {
  override name = 'InvalidTargetError';
  constructor(target: string, why: string) {
    super('INVALID_TARGET', `bad target '${target}': ${why} (expected service.node or node:port)`, 'invalid');
  }
}

/** No forward has that id. */
export class UnknownForwardError extends PlexusError {
  override name = 'UnknownForwardError';
  constructor(id: string) {
    super('UNKNOWN_FORWARD', `no forward '${id}'; see 'plexus forward ls'`, 'not_found');
  }
}

/** The listen address of a forward cannot be bound. */
export class ListenError extends PlexusError {
  override name = 'ListenError';
  constructor(listen: string, detail: string) {
    super('LISTEN_FAILED', `cannot listen on ${listen}: ${detail}`, 'conflict');
  }
}

/** The remote end spoke the tunnel protocol wrongly or went away during the handshake. */
export class TunnelProtocolError extends PlexusError {
  override name = 'TunnelProtocolError';

  /** The peer did not answer a tunnel handshake before the deadline. */
  static handshakeTimeout(): TunnelProtocolError {
    return new TunnelProtocolError(
      'TIMEOUT',
      'the peer did not answer the tunnel handshake in time',
      'unavailable',
    );
  }

  /** The peer closed the stream or connection in the middle of a tunnel handshake. */
  static handshakeClosed(): TunnelProtocolError {
    return new TunnelProtocolError(
      'STREAM_CLOSED',
      'the peer closed the tunnel during the handshake',
      'unavailable',
    );
  }
}

/** The far side refused a tunnel: its reply's code and message, passed on as they came. */
export class TunnelRefusedError extends PlexusError {
  override name = 'TunnelRefusedError';
  constructor(code: string, message: string) {
    super(code, message, code === 'UNKNOWN_SERVICE' ? 'not_found' : 'unavailable');
  }
}

/** No connection to the target node could be had (dial failed, timed out, peer went away). */
export class TunnelPeerUnreachableError extends PlexusError {
  override name = 'TunnelPeerUnreachableError';
  constructor(node: string, detail: string) {
    super('PEER_UNREACHABLE', `cannot open a tunnel to '${node}': ${detail}`, 'unavailable');
  }
}

/** A peer asked for data tickets, but this node's data listener is off. */
export class DataPathOffError extends PlexusError {
  override name = 'DataPathOffError';
  constructor() {
    super('DATA_PATH_OFF', 'this node has no tunnel data port', 'unavailable');
  }
}

/** A service name or port clashes with an existing one, or a limit on their number is hit. */
export class ServiceConflictError extends PlexusError {
  override name = 'ServiceConflictError';
}

/** A relay refused to splice: the asker or the peer named is not a current member, or it is this node. */
export class SpliceRefusedError extends PlexusError {
  /** `detail` says which. */
  constructor(detail: string) {
    super('SPLICE_REFUSED', `cannot splice here: ${detail}`, 'denied');
  }
}
