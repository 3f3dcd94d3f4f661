/**
 * The client end of tunnel data connections (docs/tunnels.md, data connections): per peer,
 * whether its data
 * listener can be reached from here, a few connections opened ahead of use, and tickets asked
 * for in batches.
 *
 * A tunnel never waits to find out whether a peer's data port is reachable: the first tunnel to
 * a peer rides the mesh stream while a data connection is tried in the background, and once one
 * worked, later tunnels take a ready connection from the pool (no round trip at all) or open one
 * (one ticket round trip over the mesh, one TCP connect). A peer whose data port cannot be
 * reached (a firewall, NAT, an agent with the data path off) is tried again after DATA_RETRY_MS.
 */
import type { Connection } from '@libp2p/interface';
import type { Logger } from '../../../logging/index.ts';
import {
  DATA_CONNECT_TIMEOUT_MS,
  DATA_OK_GRACE_MS,
  DATA_POOL_SIZE,
  DATA_RETRY_MS,
  MAX_DATA_OPENING_PER_PEER,
  OPEN_TIMEOUT_MS,
  POOL_IDLE_MS,
} from '../../constants.ts';
import { deadline } from '../../deadline.ts';
import { dial } from './dial.ts';
import { closeData, type DataConnection } from './splice.ts';
import { TicketBatcher } from './ticket-batcher.ts';
import type { TicketGrant } from './tickets.ts';

/** Ready connections left in a peer's pool at or below which a take tops it up. */
const POOL_LOW_WATER = 1;

/** What the dialer needs from the tunnel service. */
export interface DataDialerComponents {
  /** Asks a peer for `count` tickets over the mesh connection `conn`. */
  requestTickets(conn: Connection, count: number, signal: AbortSignal): Promise<TicketGrant>;
  /**
   * Asks a peer over `conn` to dial our data listener `count` times (reverse.ts); resolves once
   * it agreed. Absent: no reverse connections (this node has no data listener).
   */
  requestReverse?(conn: Connection, count: number, signal: AbortSignal): Promise<void>;
  /**
   * Asks a relay both reach to splice `count` connections to the peer (spliced/open.ts); resolves
   * once the relay and the peer agreed, with one pending connection each. Absent: no splices.
   */
  requestSplice?(conn: Connection, count: number, signal: AbortSignal): Promise<Promise<DataConnection>[]>;
  logger: Logger;
}

/**
 * A peer's data path as `plexus status` shows it: `ok` (we dial its data port), `reverse` (it
 * dials ours at our request), `spliced` (both dial a relay that joins the two connections),
 * `unreachable` (tunnels ride the mesh stream), `unknown`.
 */
export type DataPathState = 'unknown' | 'ok' | 'reverse' | 'spliced' | 'unreachable';

interface PeerData {
  state: DataPathState;
  retryAt: number;
  /** When a data connection to it last worked. */
  okAt: number;
  /** Handshakes under way, from the pool's filling and from tunnels that found the pool empty. */
  opening: number;
  pool: { data: DataConnection; timer: NodeJS.Timeout; onClose: () => void }[];
  filling: number;
  /** Tickets fetched ahead: a new data connection then costs a TCP connect, not a mesh round trip. */
  tickets: TicketBatcher;
  conn?: Connection;
  /** Who dials: we dial its data port, it dials ours (reverse.ts), or both dial a relay (spliced/). */
  via: 'direct' | 'reverse' | 'spliced';
  /** Reverse connections asked for and not arrived yet, per request. */
  asked: { left: number }[];
  /** Tunnels waiting for a reverse connection (undefined: give up, ride the stream). */
  adopters: ((data: DataConnection | undefined) => void)[];
}

/** The client side of data connections. */
export class DataDialer {
  readonly #c: DataDialerComponents;
  readonly #peers = new Map<string, PeerData>();
  #stopped = false;

  constructor(components: DataDialerComponents) {
    this.#c = components;
  }

  /** Each peer's data path state (for status). */
  states(): Record<string, DataPathState> {
    return Object.fromEntries(
      [...this.#peers].map(([id, p]) => [id, p.via !== 'direct' && p.state === 'ok' ? p.via : p.state]),
    );
  }

  /** Idle ready connections over all peers (leak checks). */
  pooled(): number {
    let n = 0;
    for (const p of this.#peers.values()) n += p.pool.length;
    return n;
  }

  /**
   * A data connection to `peer`, ready for a tunnel header, or undefined when the data path is
   * not known to work: the caller then uses the mesh stream.
   */
  async take(peer: string, conn: Connection, signal: AbortSignal): Promise<DataConnection | undefined> {
    if (this.#stopped) return undefined;
    const p = this.#peer(peer);
    p.conn = conn;
    if (p.state === 'unreachable' && Date.now() < p.retryAt) return undefined;
    const ready = p.pool.pop();
    if (ready) {
      clearTimeout(ready.timer);
      ready.data.socket.off('close', ready.onClose);
      ready.data.reader.set(undefined);
      // Topped up only when it runs low: a tunnel usually gives its connection back when it ends
      // (giveBack), so a steady stream of short tunnels needs no new handshake at all, and none
      // runs on the two agents' event loops while this tunnel is being set up.
      if (p.pool.length <= POOL_LOW_WATER) this.#fill(peer, p);
      return ready.data;
    }
    // A burst beyond what the far listener lets one address handshake at once rides the stream.
    if (p.opening >= MAX_DATA_OPENING_PER_PEER) return undefined;
    if (p.via === 'reverse' && p.state === 'ok') return this.#awaitReverse(peer, p, signal);
    if (p.state !== 'ok') {
      // Unknown, or due for a retry: find out in the background, never at this tunnel's expense.
      this.#fill(peer, p);
      return undefined;
    }
    const via = p.via;
    try {
      const data = await this.#open(p, signal);
      this.#fill(peer, p);
      return data;
    } catch (err) {
      this.#failed(peer, p, via, err as Error);
      return undefined;
    }
  }

  /**
   * Takes back a data connection a tunnel is done with and both ends kept open (splice.ts): into
   * the pool, unless the pool is full or the peer is gone (then it is closed).
   */
  giveBack(peer: string, data: DataConnection): void {
    const p = this.#peers.get(peer);
    if (this.#stopped || !p || p.pool.length >= DATA_POOL_SIZE || data.socket.destroyed)
      return void closeData(data);
    this.#pool(peer, p, data);
  }

  /** Opens ready connections to `peer` in the background (a forward was added, say). */
  warm(peer: string, conn: Connection): void {
    if (this.#stopped) return;
    const p = this.#peer(peer);
    p.conn = conn;
    if (p.state === 'unreachable' && Date.now() < p.retryAt) return;
    this.#fill(peer, p);
  }

  /** Forgets a peer and closes its ready connections (it was revoked or left). */
  drop(peer: string): void {
    const p = this.#peers.get(peer);
    if (!p) return;
    this.#peers.delete(peer);
    for (const r of p.pool) {
      clearTimeout(r.timer);
      closeData(r.data);
    }
    p.tickets.clear();
    for (const a of [...p.adopters]) a(undefined);
  }

  /** Closes everything. */
  stop(): void {
    this.#stopped = true;
    for (const peer of [...this.#peers.keys()]) this.drop(peer);
  }

  #peer(peer: string): PeerData {
    let p = this.#peers.get(peer);
    if (!p) {
      p = {
        state: 'unknown',
        via: 'direct',
        asked: [],
        adopters: [],
        retryAt: 0,
        okAt: 0,
        opening: 0,
        pool: [],
        filling: 0,
        tickets: new TicketBatcher((conn, count, signal) => this.#c.requestTickets(conn, count, signal)),
      };
      this.#peers.set(peer, p);
    }
    return p;
  }

  #unreachable(peer: string, p: PeerData, err: Error): void {
    // One failed handshake among working ones (the far listener turned a burst away) says
    // nothing about the path.
    if (p.state === 'ok' && Date.now() - p.okAt < DATA_OK_GRACE_MS) return;
    if (p.state !== 'unreachable')
      this.#c.logger.info(
        { peer, err: err.message },
        'tunnel data port not reachable; tunnels to this peer use the mesh stream',
      );
    p.state = 'unreachable';
    p.retryAt = Date.now() + DATA_RETRY_MS;
  }

  /**
   * A data connection the peer dialed back with one of our reverse tickets: it goes to a waiting
   * tunnel, else to the pool. One we did not ask for (the peer was dropped meanwhile) is closed.
   */
  adopt(peer: string, data: DataConnection): void {
    const p = this.#peers.get(peer);
    if (this.#stopped || !p) return void closeData(data);
    const req = p.asked.find((r) => r.left > 0);
    if (req) req.left--;
    p.state = 'ok';
    p.okAt = Date.now();
    const adopter = p.adopters.shift();
    if (adopter) adopter(data);
    else this.#pool(peer, p, data);
  }

  /** The direct dial failed: ask the peer to dial back, once, before giving up on the data path. */
  #directFailed(peer: string, p: PeerData, err: Error): void {
    if (p.via === 'reverse' || (p.state === 'ok' && Date.now() - p.okAt < DATA_OK_GRACE_MS)) return;
    if (!this.#c.requestReverse) return void this.#unreachable(peer, p, err);
    this.#c.logger.info(
      { peer, err: err.message },
      'tunnel data port not reachable; asking the peer to dial back',
    );
    p.via = 'reverse';
    p.state = 'unknown';
    this.#fill(peer, p);
  }

  /** Asks the peer for `n` reverse connections; those not arrived after a while are written off. */
  #askReverse(peer: string, p: PeerData, n: number): void {
    const conn = p.conn;
    const request = this.#c.requestReverse;
    if (!conn || !request) return;
    const req = { left: n };
    p.asked.push(req);
    const writeOff = () => {
      const at = p.asked.indexOf(req);
      if (at >= 0) p.asked.splice(at, 1);
      if (req.left > 0 && p.state !== 'ok')
        this.#reverseFailed(peer, p, new Error('no connection came back'));
    };
    request(conn, n, AbortSignal.timeout(OPEN_TIMEOUT_MS)).then(
      () => setTimeout(writeOff, DATA_CONNECT_TIMEOUT_MS * 2).unref(),
      (err: Error) => {
        req.left = 0;
        writeOff();
        this.#reverseFailed(peer, p, err);
      },
    );
  }

  #reverseFailed(peer: string, p: PeerData, err: Error): void {
    if (p.state === 'ok' && Date.now() - p.okAt < DATA_OK_GRACE_MS) return;
    if (this.#c.requestSplice && p.via === 'reverse') {
      // Neither side can dial the other: meet at a relay both reach.
      this.#c.logger.info(
        { peer, err: err.message },
        'peer cannot dial back either; asking a relay to splice',
      );
      p.via = 'spliced';
      p.state = 'unknown';
      this.#fill(peer, p);
      return;
    }
    // At the next retry, the direct dial is tried first again.
    p.via = 'direct';
    this.#unreachable(peer, p, err);
  }

  /**
   * A data connection could not be opened `via` one way: try the next. An attempt made before
   * the peer moved on to another way (a late direct dial timing out) says nothing about it; its
   * place in the pool is filled the current way.
   */
  #failed(peer: string, p: PeerData, via: PeerData['via'], err: Error): void {
    if (via !== p.via) {
      if (p.state === 'ok' || p.via === 'spliced') this.#fill(peer, p);
      return;
    }
    if (via === 'spliced') this.#reverseFailed(peer, p, err);
    else this.#directFailed(peer, p, err);
  }

  /** Waits a moment for a reverse connection asked for this tunnel; undefined: ride the stream. */
  #awaitReverse(peer: string, p: PeerData, signal: AbortSignal): Promise<DataConnection | undefined> {
    return new Promise((resolve) => {
      const settle = (data: DataConnection | undefined) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const at = p.adopters.indexOf(settle);
        if (at >= 0) p.adopters.splice(at, 1);
        resolve(data);
      };
      const onAbort = () => settle(undefined);
      const timer = setTimeout(onAbort, DATA_CONNECT_TIMEOUT_MS);
      signal.addEventListener('abort', onAbort, { once: true });
      p.adopters.push(settle);
      this.#askReverse(peer, p, 1);
    });
  }

  /** Keeps a ready connection for a while. */
  #pool(peer: string, p: PeerData, data: DataConnection): void {
    // Full already: connections given back by ended tunnels (giveBack) may have filled it while
    // this one was being opened, and the pool stays at DATA_POOL_SIZE whatever the order.
    if (this.#stopped || this.#peers.get(peer) !== p || p.pool.length >= DATA_POOL_SIZE)
      return void closeData(data);
    const entry = {
      data,
      onClose: () => {
        const at = p.pool.indexOf(entry);
        if (at >= 0) p.pool.splice(at, 1);
        clearTimeout(entry.timer);
      },
      // Unused for a while: give it back, so idle peers hold nothing open.
      timer: setTimeout(() => closeData(data), POOL_IDLE_MS).unref(),
    };
    data.socket.once('close', entry.onClose);
    // The server speaks only after a header: anything it sends to an idle connection is a
    // protocol error, and must not pile up in memory.
    data.reader.set(() => closeData(data));
    p.pool.push(entry);
  }

  /** Tops the pool up to DATA_POOL_SIZE in the background. */
  #fill(peer: string, p: PeerData): void {
    if (p.via === 'reverse') {
      const asked = p.asked.reduce((n, r) => n + r.left, 0);
      const want = DATA_POOL_SIZE - p.pool.length - asked;
      if (want > 0) this.#askReverse(peer, p, want);
      return;
    }
    const want = DATA_POOL_SIZE - p.pool.length - p.filling;
    for (let i = 0; i < want; i++) {
      p.filling++;
      // A splice takes three round trips over the mesh before its connect.
      const via = p.via;
      const within = via === 'spliced' ? OPEN_TIMEOUT_MS : DATA_CONNECT_TIMEOUT_MS * 2;
      const limit = deadline(within);
      this.#open(p, limit.signal).then(
        (data) => {
          limit.clear();
          p.filling--;
          this.#pool(peer, p, data);
        },
        (err) => {
          limit.clear();
          p.filling--;
          this.#failed(peer, p, via, err);
        },
      );
    }
  }

  /**
   * One ticket (batched with concurrent requests to the same peer) and one TLS handshake; or,
   * spliced, one rendezvous at a relay and the TLS through it.
   */
  async #open(p: PeerData, signal: AbortSignal): Promise<DataConnection> {
    p.opening++;
    try {
      let data: DataConnection;
      if (p.via === 'spliced' && this.#c.requestSplice && p.conn) {
        const [pending] = await this.#c.requestSplice(p.conn, 1, signal);
        data = await (pending as Promise<DataConnection>);
      } else {
        const { host, port, ticket } = await p.tickets.take(() => p.conn);
        data = await dial(host, port, ticket, signal);
      }
      p.state = 'ok';
      p.okAt = Date.now();
      return data;
    } finally {
      p.opening--;
    }
  }
}
