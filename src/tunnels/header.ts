/**
 * The handshake of `/plexus/tcp/1.0.0`: the opener sends one length-prefixed (unsigned varint)
 * JSON header `{service}` or `{port}`; the server answers with one length-prefixed JSON reply
 * `{ok: true}` or `{ok: false, code, message}`; after that both directions carry raw bytes.
 * The reply lets a forward refuse a client at once and a SOCKS client get the right reply code.
 * The header may instead be `{tickets: N}`: a request for N data-connection tickets
 * (docs/tunnels.md, data connections), answered `{ok: true, port, host?, tickets: [{id, key}]}`,
 * then the stream ends.
 */
import { isIP } from 'node:net';
import type { Stream } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';
import { MAX_TICKET_BATCH } from './constants.ts';
import type { TicketGrant } from './data-dialer.ts';
import { TunnelProtocolError } from './errors.ts';
import { isPort, SERVICE_NAME_RE } from './services.ts';

/** What the opener asks for. */
export type TunnelRequest = { service: string } | { port: number };

/** What the server answers. */
export type TunnelReply = { ok: true } | { ok: false; code: string; message: string };

/** Encodes a value as varint length + JSON. */
export function encodeFrame(value: unknown): Uint8Array {
  const body = Buffer.from(JSON.stringify(value));
  const prefix: number[] = [];
  let n = body.length;
  while (n >= 0x80) {
    prefix.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  prefix.push(n);
  return Buffer.concat([Buffer.from(prefix), body]);
}

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

/** The ticket count of a `{tickets: N}` header, or undefined for any other header. */
export function ticketRequestOf(value: unknown): number | undefined {
  const v = value as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || !('tickets' in v)) return undefined;
  const n = v.tickets;
  if (
    typeof n === 'number' &&
    Number.isInteger(n) &&
    n >= 1 &&
    n <= MAX_TICKET_BATCH &&
    Object.keys(v).length === 1
  )
    return n;
  throw new TunnelProtocolError(
    'BAD_HEADER',
    `a ticket request asks for 1 to ${MAX_TICKET_BATCH}`,
    'invalid',
  );
}

const B64URL = /^[A-Za-z0-9_-]+$/;

/** Validates a ticket reply to a request for `count` tickets (a refusal becomes an error). */
export function parseTicketGrant(value: unknown, count: number): TicketGrant {
  const v = value as Record<string, unknown> | null;
  const bad = () => new TunnelProtocolError('BAD_REPLY', 'malformed ticket reply', 'unavailable');
  if (v && v.ok === false) {
    const r = parseReply(v);
    if (!r.ok) throw new TunnelProtocolError(r.code, r.message, 'unavailable');
  }
  if (v?.ok !== true || !isPort(v.port) || !Array.isArray(v.tickets)) throw bad();
  if (v.tickets.length < 1 || v.tickets.length > count) throw bad();
  const tickets = v.tickets.map((t: { id?: unknown; key?: unknown }) => {
    if (typeof t?.id !== 'string' || typeof t.key !== 'string') throw bad();
    if (t.id.length !== 22 || t.key.length !== 43 || !B64URL.test(t.id) || !B64URL.test(t.key)) throw bad();
    return { id: t.id, key: t.key };
  });
  let host: string | undefined;
  if (v.host !== undefined) {
    if (typeof v.host !== 'string' || isIP(v.host) === 0) throw bad();
    host = v.host;
  }
  return { port: v.port, tickets, ...(host ? { host } : {}) };
}

/** Validates a decoded reply header. */
export function parseReply(value: unknown): TunnelReply {
  const v = value as Record<string, unknown> | null;
  if (v && v.ok === true) return { ok: true };
  if (v && v.ok === false && typeof v.code === 'string' && typeof v.message === 'string')
    return { ok: false, code: v.code.slice(0, 64), message: v.message.slice(0, 512) };
  throw new TunnelProtocolError('BAD_REPLY', 'malformed tunnel reply', 'unavailable');
}

/**
 * Reads one frame from `stream`, listening to its `message` events (no extra copies of the data
 * that follows). Resolves with the decoded JSON and the bytes that arrived after the frame.
 */
export function readFrame(
  stream: Stream,
  maxBytes: number,
  signal: AbortSignal,
): Promise<{ value: unknown; rest: Uint8ArrayList }> {
  return new Promise((resolve, reject) => {
    const buf = new Uint8ArrayList();
    const cleanup = () => {
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('close', onClose);
      stream.removeEventListener('end', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onAbort = () => fail(TunnelProtocolError.handshakeTimeout());
    const onClose = () => fail(TunnelProtocolError.handshakeClosed());
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }) => {
      buf.append(evt.data);
      let len = 0;
      let shift = 0;
      let i = 0;
      for (;;) {
        if (i >= buf.byteLength) return; // need more bytes for the prefix
        const b = buf.get(i++);
        len |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) break;
        shift += 7;
        if (shift > 21)
          return fail(new TunnelProtocolError('BAD_FRAME', 'frame length prefix too long', 'invalid'));
      }
      if (len > maxBytes)
        return fail(
          new TunnelProtocolError('FRAME_TOO_LARGE', `frame larger than ${maxBytes} bytes`, 'too_large'),
        );
      if (buf.byteLength < i + len) return;
      let value: unknown;
      try {
        value = JSON.parse(Buffer.from(buf.subarray(i, i + len)).toString('utf8'));
      } catch {
        return fail(new TunnelProtocolError('BAD_FRAME', 'frame is not valid JSON', 'invalid'));
      }
      buf.consume(i + len);
      cleanup();
      resolve({ value, rest: buf });
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.addEventListener('message', onMessage);
    stream.addEventListener('close', onClose);
    stream.addEventListener('end', onClose);
  });
}
