/**
 * Keeps gossipsub's one outbound stream per peer alive. gossipsub (17.1.1) opens that stream
 * once, when a peer connects or first opens a stream to us, and never checks it again. Two
 * races leave it dead while the peer stays connected, and from then on every message to the
 * peer (our subscriptions, grafts, telemetry) is dropped with "Cannot write to a stream that
 * is closed", so the peer believes we subscribe to nothing and never sends to us either:
 *  - a peer ID reconnects while its previous connection is closing (an agent restarted at once,
 *    or `plexus join`'s admission node handing over to the agent): the old connection's late
 *    stream re-adds the peer after its disconnect, the stream opened on that connection closes
 *    before gossipsub listens for its close, and the stale entry makes gossipsub skip the new
 *    connection;
 *  - opening the stream fails (a reset during setup), and gossipsub does not retry.
 * This pass, run every few seconds, replaces a dead or missing outbound stream with one on an
 * open connection to the peer, and forgets peers gossipsub still lists with no connection at
 * all. It reaches into gossipsub's fields (present at runtime, private in its types), as
 * reservations.ts does for the transport manager; upstream tracks the same class of bug in
 * libp2p/js-libp2p#3531 ("re-establishing a stream that closes while its connection stays
 * open ... is left as a follow-up").
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import type { Logger } from '../logging/index.ts';
import type { PlexusLibp2p } from './node.ts';

/** The parts of gossipsub this repair touches. */
interface GossipInternals {
  peers: Map<string, PeerId>;
  streamsOutbound: Map<string, { rawStream: Stream }>;
  outboundInflightQueue?: { push(job: { peerId: PeerId; connection: Connection }): void };
  removePeer?(peerId: PeerId): void;
}

/** True when a stream can still carry our messages to the peer. */
export function isLiveOutbound(stream: Pick<Stream, 'status' | 'writeStatus' | 'remoteReadStatus'>): boolean {
  return (
    stream.status === 'open' && stream.writeStatus === 'writable' && stream.remoteReadStatus !== 'closed'
  );
}

/** What one pass did, for logs and tests. */
export interface GossipRepairResult {
  /** Peers given a new outbound stream (it had none, or a dead one). */
  reopened: string[];
  /** Peers gossipsub listed without any open connection. */
  forgotten: string[];
}

/** One pass over gossipsub's peers; see the file comment. */
export function repairGossipStreams(node: PlexusLibp2p, logger: Logger): GossipRepairResult {
  const result: GossipRepairResult = { reopened: [], forgotten: [] };
  const gs = node.services.pubsub as unknown as GossipInternals;
  if (!gs.peers || !gs.streamsOutbound || !gs.outboundInflightQueue) return result;
  for (const [id, peerId] of [...gs.peers]) {
    const open = node.getConnections(peerId).filter((c) => c.status === 'open');
    if (open.length === 0) {
      gs.removePeer?.(peerId);
      result.forgotten.push(id);
      continue;
    }
    const out = gs.streamsOutbound.get(id);
    if (out && isLiveOutbound(out.rawStream)) continue;
    if (out) {
      gs.streamsOutbound.delete(id);
      out.rawStream.abort(new Error('replacing a dead gossipsub stream'));
    }
    // Prefer a direct connection: a relayed one may be limited.
    const conn = open.find((c) => !c.remoteAddr.toString().includes('/p2p-circuit')) ?? open[0];
    gs.outboundInflightQueue.push({ peerId, connection: conn });
    result.reopened.push(id);
  }
  if (result.reopened.length || result.forgotten.length) logger.info(result, 'repaired gossipsub streams');
  return result;
}
