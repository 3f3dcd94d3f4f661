/**
 * Data tickets of one peer, asked for in batches (docs/tunnels.md, data connections): a new data
 * connection takes a ticket fetched ahead (it then costs a TCP connect, not a mesh round trip),
 * else waits for the next request, which serves everyone waiting at once.
 */
import type { Connection } from '@libp2p/interface';
import {
  MAX_TICKET_BATCH,
  OPEN_TIMEOUT_MS,
  TICKET_MARGIN_MS,
  TICKET_PREFETCH,
  TICKET_TTL_MS,
} from '../../constants.ts';
import { isRelayed } from '../carrier.ts';
import type { DataTicket, TicketGrant } from './tickets.ts';

/** Where to dial with a ticket. */
export interface Dialable {
  host: string;
  port: number;
  ticket: DataTicket;
}

interface Waiter {
  resolve(v: Dialable): void;
  reject(err: Error): void;
}

/**
 * The host to dial for a peer: its listener's own address, else the IP of a direct mesh
 * connection (a relayed one's IP is the relay's).
 */
export function hostOf(conn: Connection, grant: { host?: string }): string | undefined {
  if (grant.host) return grant.host;
  if (isRelayed(conn)) return undefined;
  const c = conn.remoteAddr.getComponents().find((x) => x.name === 'ip4' || x.name === 'ip6');
  return c?.value;
}

/** One peer's tickets: fetched ahead, and the requests waiting for the next batch. */
export class TicketBatcher {
  readonly #request: (conn: Connection, count: number, signal: AbortSignal) => Promise<TicketGrant>;
  /** Our own deadline for each, comfortably before the server forgets it. */
  #cached: (Dialable & { useBy: number })[] = [];
  readonly #waiters: Waiter[] = [];
  #requesting = false;

  constructor(request: (conn: Connection, count: number, signal: AbortSignal) => Promise<TicketGrant>) {
    this.#request = request;
  }

  /** A ticket from the cache, else from the next batch request over `conn()` (read when sent). */
  take(conn: () => Connection | undefined): Promise<Dialable> {
    const now = Date.now();
    while (this.#cached.length > 0) {
      const t = this.#cached.shift();
      if (t && t.useBy > now) return Promise.resolve(t);
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      if (!this.#requesting) queueMicrotask(() => this.#send(conn));
    });
  }

  /** Drops the cache and fails whoever waits (the peer was dropped). */
  clear(): void {
    this.#cached = [];
    for (const w of this.#waiters.splice(0)) w.reject(new Error('peer dropped'));
  }

  /**
   * Sends one ticket request for everyone waiting (up to MAX_TICKET_BATCH), asking for at least
   * TICKET_PREFETCH so that the next few connections need no request; then the next batch.
   */
  async #send(connOf: () => Connection | undefined): Promise<void> {
    if (this.#requesting || this.#waiters.length === 0) return;
    this.#requesting = true;
    const batch = this.#waiters.splice(0, MAX_TICKET_BATCH);
    const count = Math.min(MAX_TICKET_BATCH, Math.max(batch.length, TICKET_PREFETCH));
    try {
      const conn = connOf();
      if (conn?.status !== 'open') throw new Error('no mesh connection to the peer');
      const grant = await this.#request(conn, count, AbortSignal.timeout(OPEN_TIMEOUT_MS));
      const host = hostOf(conn, grant);
      if (!host) throw new Error('the peer has no IP address to dial');
      const useBy = Date.now() + TICKET_TTL_MS - TICKET_MARGIN_MS;
      const granted = grant.tickets.map((ticket) => ({ host, port: grant.port, ticket, useBy }));
      for (const w of batch) {
        const t = granted.shift();
        if (t) w.resolve(t);
        else w.reject(new Error('the peer sent too few tickets'));
      }
      this.#cached.push(...granted);
    } catch (err) {
      for (const w of batch) w.reject(err as Error);
    } finally {
      this.#requesting = false;
      if (this.#waiters.length > 0) void this.#send(connOf);
    }
  }
}
