/**
 * The client side of the tunnels: opens a tunnel to a node's service or exposed port, for
 * forwards and the SOCKS proxy. It picks the carrier (carriers/carrier.ts): over a direct link
 * whose data port answers, a data connection of its own (carriers/data/); otherwise (a relayed
 * link, a filtered data port) a stream on the mesh connection (carriers/stream/); when the
 * target is this node, local sockets. It keeps a negotiated stream and a few data connections
 * ready per recently used peer, so that a new connection skips round trips.
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { PlexusError } from '../core/errors.ts';
import type { Logger } from '../logging/index.ts';
import type { Member, Mesh } from '../mesh/index.ts';
import { isRelayed, type OpenedTunnel, type OpeningTunnel } from './carriers/carrier.ts';
import { DataDialer } from './carriers/data/dialer.ts';
import { openOverData } from './carriers/data/open.ts';
import { parseTicketGrant, type TicketGrant } from './carriers/data/tickets.ts';
import { openSpliced } from './carriers/spliced/open.ts';
import { encodeFrame, readFrame } from './carriers/stream/frames.ts';
import { openOverStream } from './carriers/stream/open.ts';
import { StreamPool } from './carriers/stream/stream-pool.ts';
import { MAX_REPLY_BYTES, MAX_TICKET_REPLY_BYTES, OPEN_TIMEOUT_MS, TCP_PROTOCOL } from './constants.ts';
import { deadline } from './deadline.ts';
import { TunnelLimitError, TunnelPeerUnreachableError } from './errors.ts';
import { acceptReply, type TunnelRequest } from './handshake.ts';
import type { LocalTarget } from './in-process.ts';
import type { TunnelLedger } from './ledger.ts';
import { openLocal } from './local-target.ts';
import type { Target } from './targets.ts';

/** How long a name → member answer is reused (revocations clear it at once). */
const RESOLVE_CACHE_MS = 2_000;

/** Options of the client side. */
export interface TunnelClientInit {
  /** Concurrent tunnels to or from one peer: sets libp2p's outbound stream limit. */
  maxPerPeer: number;
  /** Coalesce socket reads up to this many bytes per stream write. */
  coalesceBytes: number;
}

/** What the client side uses; the mesh is read at use time (it may start after this is built). */
export interface TunnelClientComponents {
  /** `resolve` maps a name to a live member and throws UnknownNodeError. */
  mesh: Pick<Mesh, 'libp2p' | 'peerId' | 'resolve'>;
  ledger: TunnelLedger;
  /** Where a request to this node itself may go (server.ts); throws when not exposed. */
  targetFor(req: TunnelRequest): LocalTarget;
  /** Tickets of our data listener for a peer to dial back with (server.ts); undefined: none. */
  reverseGrant(peer: string, count: number): TicketGrant | undefined;
  logger: Logger;
}

/** The client side: opening tunnels, with the stream pool and the data dialer. */
export class TunnelClient {
  readonly #init: TunnelClientInit;
  readonly #c: TunnelClientComponents;
  readonly #streams: StreamPool;
  readonly #dialer: DataDialer;
  readonly #resolved = new Map<string, { member: Member; until: number }>();
  /**
   * Parsed peer IDs: parsing one (base58, then its Ed25519 key) was ~5 % of the opening agent's
   * CPU per short tunnel, before its header went out.
   */
  readonly #peerIds = new Map<string, PeerId>();

  constructor(init: TunnelClientInit, components: TunnelClientComponents) {
    this.#init = init;
    this.#c = components;
    this.#streams = new StreamPool((conn, signal) => this.#newStream(conn, signal));
    this.#dialer = new DataDialer({
      requestTickets: (conn, count, signal) => this.#requestTickets(conn, count, signal),
      requestReverse: (conn, count, signal) => this.#requestReverse(conn, count, signal),
      requestSplice: (conn, count, signal) =>
        openSpliced(conn.remotePeer.toString(), conn, count, signal, {
          finder: {
            connections: (peer) => this.#c.mesh.libp2p.getConnections(peerIdFromString(peer)),
            addresses: (peer) =>
              this.#c.mesh.libp2p.peerStore
                .get(peerIdFromString(peer))
                .then((p) => p.addresses.map((a) => a.multiaddr))
                .catch(() => []),
          },
          ask: (c, body, max, sig) => this.ask(c, body, max, sig),
        }),
      logger: components.logger,
    });
  }

  /** The dialer, for its state in the counters. */
  get dialer(): DataDialer {
    return this.#dialer;
  }

  /** Closes the pooled streams and data connections (the pool negotiates no more ahead). */
  stop(): void {
    this.#streams.stop();
    this.#dialer.stop();
  }

  /** Forgets a revoked peer: its cached name and its ready data connections. */
  dropPeer(peer: string): void {
    this.#resolved.clear();
    this.#dialer.drop(peer);
  }

  /** Opens data connections to a node ahead of use (a forward to it was added). */
  warm(node: string): void {
    try {
      const member = this.resolve(node);
      const conns = this.#c.mesh.libp2p
        .getConnections(this.#peerId(member.peerId))
        .filter((c) => c.status === 'open');
      const conn = conns.find((c) => !isRelayed(c)) ?? conns[0];
      if (conn) this.#dialer.warm(member.peerId, conn);
    } catch {
      // Unknown or unreachable now: the first tunnel will find out.
    }
  }

  /**
   * Resolves a node name to a live member; throws UnknownNodeError. Answers are kept for a
   * moment: the lookup is a SQLite query, a tenth of a short tunnel's added latency, and a
   * revocation clears them (dropPeer).
   */
  resolve(name: string): Member {
    const hit = this.#resolved.get(name);
    if (hit && hit.until > Date.now()) return hit.member;
    const member = this.#c.mesh.resolve(name);
    if (this.#resolved.size > 4096) this.#resolved.clear();
    this.#resolved.set(name, { member, until: Date.now() + RESOLVE_CACHE_MS });
    return member;
  }

  /**
   * Opens a tunnel to `target`. By default it waits for the far side's answer, so a refusal
   * (unknown service, unexposed port, nothing listening, node down) is thrown here. With
   * `optimistic` (forwards), it returns once the header is sent: the client's first bytes
   * travel while the far side connects, saving a round trip, and a refusal rejects `attach`.
   */
  async open(
    target: Target,
    signal?: AbortSignal,
    opts: { optimistic?: boolean } = {},
  ): Promise<OpenedTunnel> {
    const member = this.resolve(target.node);
    const req: TunnelRequest = 'service' in target ? { service: target.service } : { port: target.port };
    // Read at each open: the mesh's peer ID is known once it has started (libp2p caches the string).
    if (member.peerId === this.#c.mesh.peerId) return openLocal(this.#c.targetFor(req), this.#c.ledger);
    const ledger = this.#c.ledger;
    // Disarmed when the tunnel settles (deadline.ts says why not AbortSignal.timeout).
    const limit = deadline(OPEN_TIMEOUT_MS, signal);
    const sig = limit.signal;
    let release: () => void;
    try {
      release = await ledger.slot(member.peerId, sig);
    } catch (err) {
      limit.clear();
      ledger.counts.refused++;
      if (err instanceof PlexusError) throw err;
      throw new TunnelLimitError(`no tunnel to ${member.name} came free in ${OPEN_TIMEOUT_MS / 1000} s`);
    }
    ledger.counts.outbound++;
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      limit.clear();
      ledger.counts.outbound--;
      release();
    };
    const fail = (err: unknown): never => {
      done();
      ledger.counts.refused++;
      if (err instanceof PlexusError) throw err;
      throw new TunnelPeerUnreachableError(member.name, (err as Error).message);
    };
    let conn: Connection;
    try {
      conn = await this.#connectionTo(member, sig);
    } catch (err) {
      return fail(err);
    }
    const tunnel: OpeningTunnel = {
      member,
      req,
      sig,
      optimistic: opts.optimistic === true,
      opened: () => limit.clear(),
      done,
      fail,
    };
    const overStream = () =>
      openOverStream(tunnel, conn, {
        ledger,
        streams: this.#streams,
        coalesceBytes: this.#init.coalesceBytes,
      });
    // Over a relayed link too: the dialer may get a connection dialed back (reverse.ts).
    const data = await this.#dialer.take(member.peerId, conn, sig);
    if (data)
      return openOverData(tunnel, data, {
        ledger,
        overStream,
        giveBack: (d) => this.#dialer.giveBack(member.peerId, d),
      });
    return overStream();
  }

  /** Asks a peer for data tickets over a stream on the mesh connection. */
  async #requestTickets(conn: Connection, count: number, signal: AbortSignal): Promise<TicketGrant> {
    return parseTicketGrant(await this.ask(conn, { tickets: count }, MAX_TICKET_REPLY_BYTES, signal), count);
  }

  /** Sends one header to a member over a stream on the mesh connection; returns its one reply. */
  async ask(conn: Connection, body: unknown, maxBytes: number, signal: AbortSignal): Promise<unknown> {
    const stream = await this.#streams.take(conn.remotePeer.toString(), conn, signal);
    try {
      stream.send(encodeFrame(body));
      const { value } = await readFrame(stream, maxBytes, signal);
      await stream.close({ signal }).catch(() => stream.abort(new Error('closing')));
      return value;
    } catch (err) {
      stream.abort(err as Error);
      throw err;
    }
  }

  /** Asks a peer to dial our data listener `count` times (reverse.ts); resolves once it agreed. */
  async #requestReverse(conn: Connection, count: number, signal: AbortSignal): Promise<void> {
    const grant = this.#c.reverseGrant(conn.remotePeer.toString(), count);
    if (!grant) throw new Error('no data listener to be dialed back on');
    acceptReply(await this.ask(conn, { reverse: grant }, MAX_REPLY_BYTES, signal));
  }

  #newStream(conn: Connection, signal: AbortSignal): Promise<Stream> {
    return conn.newStream(TCP_PROTOCOL, {
      signal,
      runOnLimitedConnection: true,
      maxOutboundStreams: this.#init.maxPerPeer + 16,
    });
  }

  #peerId(id: string): PeerId {
    let peer = this.#peerIds.get(id);
    if (!peer) {
      if (this.#peerIds.size >= 4096) this.#peerIds.clear();
      peer = peerIdFromString(id);
      this.#peerIds.set(id, peer);
    }
    return peer;
  }

  /** The best connection to a member: a direct one if any, else a relayed one, else a dial. */
  async #connectionTo(member: Member, signal: AbortSignal): Promise<Connection> {
    const peer = this.#peerId(member.peerId);
    const conns = this.#c.mesh.libp2p.getConnections(peer).filter((c) => c.status === 'open');
    const direct = conns.find((c) => !isRelayed(c));
    if (direct) return direct;
    if (conns[0]) return conns[0];
    return this.#c.mesh.libp2p.dial(peer, { signal });
  }
}
