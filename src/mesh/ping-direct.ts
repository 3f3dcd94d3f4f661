/**
 * `plexus ping NODE --until-direct` (issue 14), as Tailscale's `ping` does: pings a member once a
 * second, saying for each reply which path it took, until the path is direct (or punched), or
 * the time is up. When the link is relayed it starts a hole punch at once, instead of waiting
 * for the next pass of the punch loop.
 */
import { peerIdFromString } from '@libp2p/peer-id';
import { PeerUnreachableError } from './errors.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';
import type { ConnectionPath } from './peer-directory.ts';
import type { PunchResult } from './punch.ts';

/** One reply of a ping until direct. */
export interface PathPing {
  seq: number;
  /** Round-trip time in ms, or null when this ping got no answer within 5 s. */
  ms: number | null;
  path: ConnectionPath;
  /** The remote address of a direct path, or the relay's name for a relayed one. */
  via: string;
}

/** The outcome. */
export interface UntilDirectResult {
  name: string;
  peerId: string;
  direct: boolean;
  path: ConnectionPath;
  via: string;
  sent: number;
  received: number;
  /** The hole punch this started, if the link was relayed. */
  punch?: PunchResult;
}

/** What it uses. */
export interface PingDirectComponents {
  node: PlexusLibp2p;
  membership: Membership;
  connectionTo(peerId: string): ConnectionPath;
  punch(peerId: string): Promise<PunchResult>;
}

/** The best path's address (direct) or relay name (relayed). */
function viaOf(c: PingDirectComponents, peerId: string, path: ConnectionPath): string {
  const conns = c.node.getConnections(peerIdFromString(peerId)).filter((x) => x.status === 'open');
  const circuit = (s: string) => s.includes('/p2p-circuit');
  if (path === 'relayed') {
    const relay = conns[0]?.remoteAddr.toString().split('/p2p-circuit')[0].split('/p2p/').pop() ?? '';
    return c.membership.get(relay)?.name ?? relay;
  }
  const direct = conns.find((x) => !circuit(x.remoteAddr.toString()));
  return direct ? direct.remoteAddr.toString().split('/p2p/')[0] : '';
}

/** Pings `nameOrPeer` every second until the path is direct or `timeoutMs` has passed. */
export async function pingUntilDirect(
  c: PingDirectComponents,
  nameOrPeer: string,
  timeoutMs: number,
  onReply: (p: PathPing) => Promise<void>,
  signal: AbortSignal,
): Promise<UntilDirectResult> {
  const m = c.membership.resolve(nameOrPeer);
  if (m.peerId === c.node.peerId.toString()) throw new PeerUnreachableError(m.name, 'that is this node');
  const peer = peerIdFromString(m.peerId);
  const deadline = Date.now() + timeoutMs;
  const isDirect = (p: ConnectionPath) => p === 'direct' || p === 'punched';
  let punching: Promise<PunchResult> | undefined;
  let sent = 0;
  let received = 0;
  for (;;) {
    if (!punching && c.connectionTo(m.peerId) === 'relayed') punching = c.punch(m.peerId);
    sent++;
    let ms: number | null = null;
    try {
      ms = await c.node.services.ping.ping(peer, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
      });
      received++;
    } catch {
      // No answer this time: said in the reply line, and the loop goes on until the deadline.
    }
    const path = c.connectionTo(m.peerId);
    await onReply({ seq: sent, ms, path, via: viaOf(c, m.peerId, path) });
    if (isDirect(path) || signal.aborted || Date.now() + 1000 > deadline) {
      const punch = punching ? await punching : undefined;
      if (received === 0 && !isDirect(path)) throw new PeerUnreachableError(m.name, 'no ping was answered');
      return {
        name: m.name,
        peerId: m.peerId,
        direct: isDirect(path),
        path,
        via: viaOf(c, m.peerId, path),
        sent,
        received,
        ...(punch ? { punch } : {}),
      };
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
