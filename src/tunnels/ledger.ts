/**
 * What both ends of the tunnels share: the limits on concurrent tunnels per peer and in total,
 * the set of open tunnels (so that stopping the agent or revoking a peer cuts them), and the
 * counters that `plexus status` shows, so that leaks show up there.
 */
import type { Stream } from '@libp2p/interface';
import type { Logger } from '../logging/index.ts';
import type { SpliceResult } from './carriers/carrier.ts';
import type { DataPathState } from './carriers/data/dialer.ts';
import type { SpliceCounters } from './carriers/spliced/relay.ts';
import { MAX_WAITING_TUNNELS, SERVED_HEADROOM } from './constants.ts';
import { TunnelLimitError } from './errors.ts';
import type { LocalSocket } from './in-process.ts';

/** A tunnel waiting for a slot. */
interface Waiter {
  peer: string;
  resolve(release: () => void): void;
}

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
  /** The port this node takes splice preambles on as a relay; null when it relays no splices or the data path is off. */
  splicePort: number | null;
  /** Per peer: whether its data listener is reachable from here. */
  dataPaths: Record<string, DataPathState>;
  /** Tunnels opened over a connection spliced by a relay, of `openedData`. */
  openedSpliced: number;
  /** What this node carries as a relay for other members (carriers/spliced/relay.ts). */
  splices: SpliceCounters;
}

/** Limits, open tunnels and counters of both ends. */
export class TunnelLedger {
  readonly #maxPerPeer: number;
  readonly #maxTotal: number;
  readonly #logger: Logger;
  readonly #perPeer = new Map<string, number>();
  readonly #live = new Set<{ peer?: string; close(): void }>();
  /** Tunnels waiting for a slot (client side), oldest first. */
  readonly #waiting: Waiter[] = [];
  /** Slots taken and not yet released. */
  #held = 0;
  /** Lifetime totals and the tunnels open now; the ends count into it directly. */
  readonly counts = {
    inbound: 0,
    outbound: 0,
    opened: 0,
    openedData: 0,
    openedSpliced: 0,
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

  /**
   * Takes a tunnel slot with `peer` for a tunnel a peer opened; throws TunnelLimitError. The
   * served side allows SERVED_HEADROOM more than a client opens: a client frees its slot when
   * its side closes, a moment before this side's splice ends, so a client at its limit must not
   * be refused here. The returned release is idempotent.
   */
  acquire(peer: string): () => void {
    const perPeer = Math.ceil(this.#maxPerPeer * SERVED_HEADROOM);
    const release = this.#tryTake(peer, perPeer);
    if (!release) throw this.#limitError();
    return release;
  }

  /**
   * Takes a slot for a tunnel we open to `peer`, waiting for one when the peer's or the total
   * limit is reached: a burst of a forward's clients queues, in order, instead of being reset.
   * Throws TunnelLimitError when MAX_WAITING_TUNNELS already wait, and the signal's reason when
   * it aborts first.
   */
  async slot(peer: string, signal: AbortSignal): Promise<() => void> {
    // Straight in unless this peer's earlier tunnels wait (they go first; other peers do not wait on them).
    const release = this.#waiting.some((w) => w.peer === peer)
      ? undefined
      : this.#tryTake(peer, this.#maxPerPeer);
    if (release) return release;
    if (this.#waiting.length >= MAX_WAITING_TUNNELS)
      throw new TunnelLimitError(`${MAX_WAITING_TUNNELS} connections already wait for a tunnel`);
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        peer,
        resolve: (release) => {
          signal.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #totalFull(): boolean {
    return Math.max(this.#held, this.counts.inbound + this.counts.outbound) >= this.#maxTotal;
  }

  /** Which limit refused a slot. */
  #limitError(): TunnelLimitError {
    return this.#totalFull()
      ? new TunnelLimitError(`${this.#maxTotal} open in total`)
      : new TunnelLimitError(`${this.#maxPerPeer} open with one peer`);
  }

  /**
   * A slot with `peer`, or undefined when a limit is reached. It does not throw: releases hand
   * slots to waiters on the hot path, where an Error per full peer would cost a stack capture.
   */
  #tryTake(peer: string, perPeer: number): (() => void) | undefined {
    if (this.#totalFull()) return undefined;
    const n = this.#perPeer.get(peer) ?? 0;
    if (n >= perPeer) return undefined;
    this.#perPeer.set(peer, n + 1);
    this.#held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#held--;
      const left = (this.#perPeer.get(peer) ?? 1) - 1;
      if (left <= 0) this.#perPeer.delete(peer);
      else this.#perPeer.set(peer, left);
      this.#wake();
    };
  }

  /** Hands freed slots to the waiting tunnels, oldest first (one whose peer is full waits on). */
  #wake(): void {
    for (let i = 0; i < this.#waiting.length && !this.#totalFull(); ) {
      const w = this.#waiting[i];
      const release = this.#tryTake(w.peer, this.#maxPerPeer);
      if (!release) {
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      w.resolve(release);
    }
  }

  /** Keeps an open tunnel's sockets or stream, to be reset by closeAll or closePeer; returns untrack. */
  track(socket: LocalSocket, other: Stream | LocalSocket | undefined, peer?: string): () => void {
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
