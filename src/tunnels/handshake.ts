/**
 * What a tunnel's handshake says, whichever carrier it travels on: the opener asks for
 * `{service}` or `{port}`; the server answers `{ok: true}` or `{ok: false, code, message}`; after
 * that both directions carry the tunnel's bytes. The reply lets a forward refuse a client at once
 * and a SOCKS client get the right reply code. On the mesh stream these are varint-prefixed JSON
 * frames (carriers/stream/frames.ts); on a data connection, the first record each way
 * (carriers/data/splice.ts, readFirstRecord).
 */
import { PlexusError } from '../core/errors.ts';
import { TunnelProtocolError, TunnelRefusedError } from './errors.ts';
import { isPort, SERVICE_NAME_RE } from './services.ts';

/** What the opener asks for. */
export type TunnelRequest = { service: string } | { port: number };

/** What the server answers. */
export type TunnelReply = { ok: true } | { ok: false; code: string; message: string };

/** Validates a decoded request header. */
export function parseRequest(value: unknown): TunnelRequest {
  const v = value as Record<string, unknown> | null;
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    if (typeof v.service === 'string' && SERVICE_NAME_RE.test(v.service) && !('port' in v))
      return { service: v.service };
    if (isPort(v.port) && !('service' in v)) return { port: v.port };
  }
  throw new TunnelProtocolError('BAD_HEADER', 'tunnel header must be {service} or {port}', 'invalid');
}

/**
 * True when a data connection's header (or reply) carries `reuse: true`: the opener asks to keep
 * the connection for its next tunnel, and the server agrees by echoing it (carriers/data/splice.ts).
 * Agents that predate it ignore the field, so either side may be older: then the connection closes
 * after one tunnel as before.
 */
export function wantsReuse(value: unknown): boolean {
  return (value as { reuse?: unknown } | null)?.reuse === true;
}

/** Validates a decoded reply header. */
export function parseReply(value: unknown): TunnelReply {
  const v = value as Record<string, unknown> | null;
  if (v && v.ok === true) return { ok: true };
  if (v && v.ok === false && typeof v.code === 'string' && typeof v.message === 'string')
    return { ok: false, code: v.code.slice(0, 64), message: v.message.slice(0, 512) };
  throw new TunnelProtocolError('BAD_REPLY', 'malformed tunnel reply', 'unavailable');
}

/** Checks the far side's reply: a refusal is thrown as TunnelRefusedError with its code. */
export function acceptReply(value: unknown): void {
  const reply = parseReply(value);
  if (!reply.ok) throw new TunnelRefusedError(reply.code, reply.message);
}

/**
 * The refusal sent for `err`: a domain error's code and message as they are, anything else as
 * TUNNEL_FAILED (the opener learns nothing of this node's internals).
 */
export function refusalOf(err: unknown): TunnelReply {
  return err instanceof PlexusError
    ? { ok: false, code: err.code, message: err.message }
    : { ok: false, code: 'TUNNEL_FAILED', message: 'the tunnel failed on the far side' };
}
