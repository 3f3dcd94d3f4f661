/**
 * Reverse data connections (docs/tunnels.md, data connections): when a tunnel's client cannot
 * dial the target's data port (the target is behind NAT, or a firewall filters its port), it
 * asks the target over the mesh stream to dial *its* data listener instead. The request
 * `{reverse: {port, host?, tickets}}` carries tickets of the client's own listener; the target
 * answers `{ok: true}` and opens one TLS connection per ticket (it is the TLS client, keyed by
 * the ticket as usual), then serves tunnels on them exactly like connections it accepted. The
 * client's listener hands them to its dialer's pool (the ticket says they are reverse ones).
 *
 * The target dials only addresses where it already knows the asking member to be (the mesh
 * connection's address, the member's own addresses): a member cannot point it at a third host.
 */
import { isIP } from 'node:net';
import type { Connection } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { MAX_REVERSE_BATCH } from '../../constants.ts';
import { TunnelProtocolError } from '../../errors.ts';
import { isRelayed } from '../carrier.ts';
import { parseTicketGrant, type TicketGrant } from './tickets.ts';

/** The grant of a `{reverse: …}` header, or undefined for any other header. */
export function reverseRequestOf(value: unknown): TicketGrant | undefined {
  const v = value as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || !('reverse' in v)) return undefined;
  const r = v.reverse as Record<string, unknown> | null;
  if (Object.keys(v).length !== 1 || !r || typeof r !== 'object')
    throw new TunnelProtocolError('BAD_HEADER', 'a reverse request is {reverse: {port, tickets}}', 'invalid');
  try {
    return parseTicketGrant({ ...r, ok: true }, MAX_REVERSE_BATCH);
  } catch {
    throw new TunnelProtocolError(
      'BAD_HEADER',
      `a reverse request carries 1 to ${MAX_REVERSE_BATCH} well-formed tickets`,
      'invalid',
    );
  }
}

/** The IP of a multiaddr (its first ip4/ip6 component), if any. */
function ipOf(addr: Multiaddr): string | undefined {
  return addr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value;
}

/**
 * Where the target may dial the asker's data listener, best first: the listener's own host when
 * it is one of the asker's known addresses, the direct mesh connection's address, then the
 * asker's other known addresses. `known` are the asker's addresses from the peer store.
 */
export function reverseHosts(grant: TicketGrant, conn: Connection, known: Multiaddr[]): string[] {
  const seen = new Set<string>();
  if (!isRelayed(conn)) {
    const ip = ipOf(conn.remoteAddr);
    if (ip) seen.add(ip);
  }
  for (const a of known) {
    if (a.toString().includes('/p2p-circuit')) continue;
    const ip = ipOf(a);
    if (ip && isIP(ip)) seen.add(ip);
  }
  const hosts = [...seen];
  if (grant.host && seen.has(grant.host)) return [grant.host, ...hosts.filter((h) => h !== grant.host)];
  return hosts;
}
