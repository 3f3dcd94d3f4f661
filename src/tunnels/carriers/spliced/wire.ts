/**
 * What spliced connections say (docs/tunnels.md, spliced connections), on the mesh stream and
 * at the relay's data listener:
 * - opener → relay: `{splice: {peer, count}}` → `{ok, port, host?, rendezvous: [id], tickets}`:
 *   the relay makes `count` rendezvous between the opener and `peer`, and one ticket per
 *   rendezvous for the opener's side;
 * - opener → target: `{meet: {relay, rendezvous: [id]}}` → `{ok, tickets}`: the target joins
 *   them and answers with tickets of its own data listener, for the TLS that runs end to end;
 * - target → relay: `{splice: {peer, join: [id]}}` → `{ok, port, host?, tickets}`: the tickets
 *   of the target's sides.
 * Each side then connects to the relay's data listener and sends a preamble of fixed size:
 * `PLXSPLC1`, its ticket's 16-byte id and 32-byte secret. A TLS connection starts with 0x16
 * (a handshake record), so the first byte tells the two apart.
 */
import { isIP } from 'node:net';
import { MAX_SPLICE_BATCH } from '../../constants.ts';
import { TunnelProtocolError } from '../../errors.ts';
import { parseReply } from '../../handshake.ts';
import { isPort } from '../../services.ts';
import type { DataTicket } from '../data/tickets.ts';

/** The first bytes of a splice preamble ('P': never the 0x16 that starts a TLS handshake). */
export const SPLICE_MAGIC = Buffer.from('PLXSPLC1');
/** A preamble: the magic, a ticket's 16-byte id and its 32-byte secret. */
export const PREAMBLE_BYTES = SPLICE_MAGIC.length + 16 + 32;

/** The preamble that presents `ticket` to a relay. */
export function encodePreamble(ticket: DataTicket): Buffer {
  const id = Buffer.from(ticket.id, 'base64url');
  const key = Buffer.from(ticket.key, 'base64url');
  if (id.length !== 16 || key.length !== 32) throw new Error('malformed splice ticket');
  return Buffer.concat([SPLICE_MAGIC, id, key]);
}

/** The ticket a preamble presents, or undefined when it is not one. */
export function parsePreamble(bytes: Buffer): { id: string; secret: Buffer } | undefined {
  if (bytes.length !== PREAMBLE_BYTES || !bytes.subarray(0, SPLICE_MAGIC.length).equals(SPLICE_MAGIC))
    return undefined;
  const at = SPLICE_MAGIC.length;
  return {
    id: bytes.subarray(at, at + 16).toString('base64url'),
    secret: Buffer.from(bytes.subarray(at + 16, at + 48)),
  };
}

/** A request to a relay: make `count` rendezvous with `peer`, or join those `peer` made. */
export type SpliceRequest = { peer: string; count: number } | { peer: string; join: string[] };

/** What a relay answers: where its data listener is, the rendezvous ids and our sides' tickets. */
export interface SpliceGrant {
  host?: string;
  port: number;
  rendezvous: string[];
  tickets: DataTicket[];
}

/** A request to meet at a relay, as the target receives it. */
export interface MeetRequest {
  relay: string;
  rendezvous: string[];
}

const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{32,128}$/;
const ID = /^[A-Za-z0-9_-]{22}$/;
const KEY = /^[A-Za-z0-9_-]{43}$/;

const badHeader = (what: string) => new TunnelProtocolError('BAD_HEADER', what, 'invalid');
const badReply = () => new TunnelProtocolError('BAD_REPLY', 'malformed splice reply', 'unavailable');

/** The single-key object under `key` of a header, or undefined for any other header. */
function section(value: unknown, key: string): Record<string, unknown> | undefined {
  const v = value as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || !(key in v)) return undefined;
  const s = v[key] as Record<string, unknown> | null;
  if (Object.keys(v).length !== 1 || !s || typeof s !== 'object' || Array.isArray(s))
    throw badHeader(`a ${key} request is {${key}: {…}}`);
  return s;
}

/** A list of 1 to MAX_SPLICE_BATCH rendezvous ids, or undefined. */
function idsOf(value: unknown): string[] | undefined {
  if (!Array.isArray(value) || value.length < 1 || value.length > MAX_SPLICE_BATCH) return undefined;
  if (!value.every((x) => typeof x === 'string' && ID.test(x))) return undefined;
  if (new Set(value).size !== value.length) return undefined;
  return value as string[];
}

/** The request of a `{splice: …}` header, or undefined for any other header. */
export function spliceRequestOf(value: unknown): SpliceRequest | undefined {
  const s = section(value, 'splice');
  if (!s) return undefined;
  const usage = `a splice request is {splice: {peer, count: 1-${MAX_SPLICE_BATCH}}} or {splice: {peer, join: [ids]}}`;
  if (typeof s.peer !== 'string' || !PEER_ID.test(s.peer) || Object.keys(s).length !== 2)
    throw badHeader(usage);
  if ('count' in s) {
    const n = s.count;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_SPLICE_BATCH)
      return { peer: s.peer, count: n };
    throw badHeader(usage);
  }
  const join = idsOf(s.join);
  if (!join) throw badHeader(usage);
  return { peer: s.peer, join };
}

/** The request of a `{meet: …}` header, or undefined for any other header. */
export function meetRequestOf(value: unknown): MeetRequest | undefined {
  const s = section(value, 'meet');
  if (!s) return undefined;
  const rendezvous = idsOf(s.rendezvous);
  if (typeof s.relay !== 'string' || !PEER_ID.test(s.relay) || !rendezvous || Object.keys(s).length !== 2)
    throw badHeader(`a meet request is {meet: {relay, rendezvous: [1-${MAX_SPLICE_BATCH} ids]}}`);
  return { relay: s.relay, rendezvous };
}

/** Validates `count` tickets of a reply. */
function ticketsOf(value: unknown, count: number): DataTicket[] {
  if (!Array.isArray(value) || value.length !== count) throw badReply();
  return value.map((t: { id?: unknown; key?: unknown }) => {
    if (typeof t?.id !== 'string' || typeof t.key !== 'string' || !ID.test(t.id) || !KEY.test(t.key))
      throw badReply();
    return { id: t.id, key: t.key };
  });
}

/** Throws a refusal in a reply as its error; checks `ok`. */
function acceptOk(v: Record<string, unknown> | null): asserts v is Record<string, unknown> {
  if (v && v.ok === false) {
    const r = parseReply(v);
    if (!r.ok) throw new TunnelProtocolError(r.code, r.message, 'unavailable');
  }
  if (v?.ok !== true) throw badReply();
}

/** Validates a relay's answer to a request for `count` rendezvous (or joining `count`). */
export function parseSpliceGrant(value: unknown, count: number): SpliceGrant {
  const v = value as Record<string, unknown> | null;
  acceptOk(v);
  if (!isPort(v.port)) throw badReply();
  const tickets = ticketsOf(v.tickets, count);
  const rendezvous = idsOf(v.rendezvous);
  if (!rendezvous || rendezvous.length !== count) throw badReply();
  if (v.host !== undefined && (typeof v.host !== 'string' || isIP(v.host) === 0)) throw badReply();
  return { port: v.port, rendezvous, tickets, ...(v.host ? { host: v.host as string } : {}) };
}

/** Validates a target's answer to a meet request for `count` rendezvous: its TLS tickets. */
export function parseMeetReply(value: unknown, count: number): DataTicket[] {
  const v = value as Record<string, unknown> | null;
  acceptOk(v);
  return ticketsOf(v.tickets, count);
}
