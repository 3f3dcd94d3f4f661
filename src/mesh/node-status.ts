/** What `plexus status` shows of this node: identity, addresses, reachability, peer counts and footprint. */
import type { NatView } from './nat.ts';
import type { PeerView } from './peer-directory.ts';

/** What the mesh knows of itself, for `nodeStatus`. */
export interface SelfView {
  name: string;
  peerId: string;
  networkId: string;
  version: string;
  /** When the mesh was created, ms. */
  startedAt: number;
  addrs: string[];
  /** Where its join door listens (empty when `mesh.door` is off). */
  door: string[];
  /** This node holds the admin key. */
  admin: boolean;
  /** Whether it can be dialled (public, behind NAT, unknown), why, and the relays it holds. */
  reachability: NatView;
}

/** Builds the status from this node's view of itself and of its peers. */
export function nodeStatus(self: SelfView, peers: PeerView[]) {
  const counts = { online: 0, suspect: 0, down: 0 };
  for (const p of peers) counts[p.state]++;
  return {
    name: self.name,
    peerId: self.peerId,
    networkId: self.networkId,
    version: self.version,
    uptimeS: Math.round((Date.now() - self.startedAt) / 1000),
    addrs: self.addrs,
    door: self.door,
    admin: self.admin,
    reachability: self.reachability,
    peers: { total: peers.length, ...counts },
    // The agent's own footprint, so operators can see what it costs them.
    agent: {
      pid: process.pid,
      rssMb: Math.round(process.memoryUsage.rss() / 1048576),
      heapUsedMb: Math.round(process.memoryUsage().heapUsed / 1048576),
    },
  };
}

/** This node's status, as `plexus status` prints it. */
export type NodeStatus = ReturnType<typeof nodeStatus>;
