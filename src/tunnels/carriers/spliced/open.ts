/**
 * The members' ends of spliced connections (docs/tunnels.md, spliced connections): the opener
 * asks a relay both reach for rendezvous, asks the target over the mesh to meet there, and
 * dials the relay with its tickets; the target joins the rendezvous at the relay, dials it too,
 * and runs the TLS server end on its outbound connection. The TLS inside is keyed by a ticket the
 * target issued, as on a direct data connection.
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { Connection } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { DATA_CONNECT_TIMEOUT_MS, MAX_TICKET_REPLY_BYTES, SPLICE_WAIT_MS } from '../../constants.ts';
import { isRelayed } from '../carrier.ts';
import { dial } from '../data/dial.ts';
import type { DataConnection } from '../data/splice.ts';
import { hostOf } from '../data/ticket-batcher.ts';
import type { DataTicket } from '../data/tickets.ts';
import { encodePreamble, parseMeetReply, parseSpliceGrant, type SpliceGrant } from './wire.ts';

/** Sends one header to a member over a mesh connection and returns its one reply. */
export type AskPeer = (
  conn: Connection,
  body: unknown,
  maxBytes: number,
  signal: AbortSignal,
) => Promise<unknown>;

/** What finding a relay needs of the mesh. */
export interface RelayFinder {
  /** Open connections to a peer. */
  connections(peer: string): Connection[];
  /** A peer's known addresses (its circuit addresses name its relays). */
  addresses(peer: string): Promise<Multiaddr[]>;
}

/** The relay a circuit address goes through (`/…/p2p/RELAY/p2p-circuit…`). */
export function relayOf(addr: Multiaddr): string | undefined {
  const text = addr.toString();
  const at = text.indexOf('/p2p-circuit');
  return at < 0 ? undefined : /\/p2p\/([^/]+)$/.exec(text.slice(0, at))?.[1];
}

const directTo = (f: RelayFinder, peer: string) =>
  f.connections(peer).find((c) => c.status === 'open' && !isRelayed(c));

/**
 * A relay both ends reach, and our direct connection to it: the one our relayed mesh connection
 * to the peer goes through, else one the peer holds a reservation on (its circuit addresses)
 * that we have a direct connection to.
 */
export async function findRelay(
  f: RelayFinder,
  peer: string,
  conn: Connection,
): Promise<{ relay: string; conn: Connection } | undefined> {
  const candidates = isRelayed(conn) ? [relayOf(conn.remoteAddr)] : [];
  for (const a of await f.addresses(peer)) candidates.push(relayOf(a));
  for (const relay of candidates) {
    const c = relay && relay !== peer ? directTo(f, relay) : undefined;
    if (relay && c) return { relay, conn: c };
  }
  return undefined;
}

/**
 * Opener: `count` data connections to `peer` spliced by a relay. Resolves once the relay and the
 * target agreed, with one pending connection each (each settles on its own).
 */
export async function openSpliced(
  peer: string,
  conn: Connection,
  count: number,
  signal: AbortSignal,
  c: { finder: RelayFinder; ask: AskPeer },
): Promise<Promise<DataConnection>[]> {
  const at = await findRelay(c.finder, peer, conn);
  if (!at) throw new Error('no relay that both ends reach');
  const grant = parseSpliceGrant(
    await c.ask(at.conn, { splice: { peer, count } }, MAX_TICKET_REPLY_BYTES, signal),
    count,
  );
  const { host, port } = relayAddress(at.conn, grant, await c.finder.addresses(at.relay));
  const tls = parseMeetReply(
    await c.ask(
      conn,
      { meet: { relay: at.relay, rendezvous: grant.rendezvous } },
      MAX_TICKET_REPLY_BYTES,
      signal,
    ),
    count,
  );
  return grant.tickets.map((ticket, i) =>
    dial(host, port, tls[i] as DataTicket, AbortSignal.timeout(SPLICE_WAIT_MS + DATA_CONNECT_TIMEOUT_MS), {
      preamble: encodePreamble(ticket),
      timeoutMs: SPLICE_WAIT_MS + DATA_CONNECT_TIMEOUT_MS,
    }),
  );
}

/**
 * Target: a TCP connection to the relay's data listener that has sent its preamble; the caller
 * runs the TLS server end on it (DataListener.acceptSpliced).
 */
export function connectRelay(host: string, port: number, ticket: DataTicket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ host, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      raw.destroy();
      reject(new Error(`connect to ${host}:${port} timed out`));
    }, DATA_CONNECT_TIMEOUT_MS);
    raw.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    raw.once('connect', () => {
      clearTimeout(timer);
      raw.removeAllListeners('error');
      raw.on('error', () => {});
      raw.write(encodePreamble(ticket));
      resolve(raw);
    });
  });
}

/**
 * Where to connect to a relay's data listener: the host its grant names only when the relay is
 * known to be there (our direct connection to it, or its own addresses, `known`), so that a
 * relay cannot point members at a third host; else the address of our direct connection.
 */
export function relayAddress(
  relayConn: Connection,
  grant: SpliceGrant,
  known: Multiaddr[],
): { host: string; port: number } {
  const seen = hostOf(relayConn, {});
  const ok = (h: string) =>
    h === seen ||
    known.some((a) => !a.toString().includes('/p2p-circuit') && a.getComponents().some((c) => c.value === h));
  const host = grant.host && ok(grant.host) ? grant.host : seen;
  if (!host) throw new Error('the relay has no IP address to dial');
  return { host, port: grant.port };
}
