/**
 * Data tickets on the wire (docs/tunnels.md, data connections): a member asks for tickets over
 * the Noise-encrypted mesh stream with the frame `{tickets: N}` and gets
 * `{ok: true, port, host?, tickets: [{id, key}]}`; each ticket keys one TLS handshake with the
 * data listener (tls.ts: the id is the PSK identity, the key the PSK). The listener
 * (listener.ts) issues and redeems them; the dialer (dialer.ts) asks for them in batches.
 */
import { isIP } from 'node:net';
import { MAX_TICKET_BATCH } from '../../constants.ts';
import { TunnelProtocolError } from '../../errors.ts';
import { parseReply } from '../../handshake.ts';
import { isPort } from '../../services.ts';

/** A ticket as handed to the peer. */
export interface DataTicket {
  /** base64url of the 16-byte id. */
  id: string;
  /** base64url of the 32-byte secret. */
  key: string;
}

/** Where a peer's data listener is, with fresh tickets for it. */
export interface TicketGrant {
  /** The listener's host, when it is bound to a specific address. */
  host?: string;
  port: number;
  tickets: DataTicket[];
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
