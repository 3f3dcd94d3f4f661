/**
 * What both ends of the tunnels share: the limits on concurrent tunnels per peer and in total,
 * the set of open tunnels (so that stopping the agent or revoking a peer cuts them), and the
 * counters that `plexus status` shows, so that leaks show up there.
 */
import type { Socket } from 'node:net';
import type { Stream } from '@libp2p/interface';
import type { Logger } from '../logging/index.ts';
import type { SpliceResult } from './carriers/carrier.ts';
import type { DataPathState } from './carriers/data/dialer.ts';
import { TunnelLimitError } from './errors.ts';

/** Counters for status and leak checks. */
export interface TunnelCounters {
  active: number;
  inbound: number;
  outbound: number;
  opened: number;
  refused: number;
  bytesSent: number;
  bytesReceived: number;
  /** Tunnels opened over a data connection, of `opened`. */
  openedData: number;
  /** Ready data connections kept for recently used peers (client side). */
  dataPooled: number;
  /** Data connections from peers' pools, waiting here for a tunnel header (server side). */
  dataWaiting: number;
  /** The data listener's port, or null when the data path is off. */
  dataPort: number | null;
  /** Per peer: whether its data listener is reachable from here. */
  dataPaths: Record<string, DataPathState>;
}

/** Limits, open tunnels and counters of both ends. */
export class TunnelLedger {
  readonly #maxPerPeer: number;
  readonly #maxTotal: number;
  readonly #logger: Logger;
  readonly #perPeer = new Map<string, number>();
  readonly #live = new Set<{ peer?: string; close(): void }>();
  /** Lifetime totals and the tunnels open now; the ends count into it directly. */
  readonly counts = {
    inbound: 0,
    outbound: 0,
    opened: 0,
    openedData: 0,
    refused: 0,
    bytesSent: 0,
    bytesReceived: 0,
  };
  /** Data connections from peers' pools, waiting here for a tunnel header (server side). */
  dataWaiting = 0;

  constructor(limits: { maxPerPeer: number; maxTotal: number }, logger: Logger) {
    this.#maxPerPeer = limits.maxPerPeer;
    this.#maxTotal = limits.maxTotal;
    this.#logger = logger;
  }

  /** Takes a tunnel slot with `peer`; throws TunnelLimitError. The returned release is idempotent. */
  acquire(peer: string): () => void {
    const total = this.counts.inbound + this.counts.outbound;
    if (total >= this.#maxTotal) throw new TunnelLimitError(`${this.#maxTotal} open in total`);
    const n = this.#perPeer.get(peer) ?? 0;
    if (n >= this.#maxPerPeer) throw new TunnelLimitError(`${this.#maxPerPeer} open with one peer`);
    this.#perPeer.set(peer, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#perPeer.get(peer) ?? 1) - 1;
      if (left <= 0) this.#perPeer.delete(peer);
      else this.#perPeer.set(peer, left);
    };
  }

  /** Keeps an open tunnel's sockets or stream, to be reset by closeAll or closePeer; returns untrack. */
  track(socket: Socket, other: Stream | Socket | undefined, peer?: string): () => void {
    const entry = {
      peer,
      close: () => {
        if (!socket.destroyed) socket.resetAndDestroy();
        if (other && 'abort' in other) other.abort(new Error('tunnel closed'));
        else if (other && !other.destroyed) other.resetAndDestroy();
      },
    };
    this.#live.add(entry);
    return () => this.#live.delete(entry);
  }

  /** Resets every open tunnel (the agent stops). */
  closeAll(): void {
    for (const t of [...this.#live]) t.close();
  }

  /** Resets every open tunnel to or from `peer` (it was revoked). */
  closePeer(peer: string): void {
    for (const t of [...this.#live]) if (t.peer === peer) t.close();
  }

  /** Counts a finished splice's bytes and logs how it ended when not cleanly. */
  spliced(r: SpliceResult, where: Record<string, unknown>): void {
    this.counts.bytesSent += r.sent;
    this.counts.bytesReceived += r.received;
    if (!r.clean) this.#logReset(r, where);
  }

  /** A client going away is routine (debug); the mesh side failing is worth an info line. */
  #logReset(r: SpliceResult, where: Record<string, unknown>): void {
    const fields = { ...where, error: r.error, sent: r.sent, received: r.received };
    if (r.error?.startsWith('stream')) this.#logger.info(fields, 'tunnel cut on the mesh side');
    else this.#logger.debug(fields, 'tunnel reset by the local side');
  }
}
