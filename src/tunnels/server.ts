/**
 * The server side of the tunnels: serves `/plexus/tcp/1.0.0` to members and runs the data
 * listener. Only exposed services and ports are reachable (targetFor); anything else is refused
 * with UNKNOWN_SERVICE or PORT_NOT_EXPOSED, on either carrier. A stream's first frame is a
 * tunnel request (served by carriers/stream/serve.ts) or a request for data tickets (answered
 * here); a redeemed data connection is served by carriers/data/serve.ts.
 */
import { isIP, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Connection, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { PlexusError } from '../core/errors.ts';
import type { Logger } from '../logging/index.ts';
import type { Mesh } from '../mesh/index.ts';
import { dial } from './carriers/data/dial.ts';
import { DataListener, type DataListenerInit, type RedeemedTicket } from './carriers/data/listener.ts';
import { reverseHosts, reverseRequestOf } from './carriers/data/reverse.ts';
import { type DataServeContext, serveData } from './carriers/data/serve.ts';
import { type DataConnection, dataConnection, resetData } from './carriers/data/splice.ts';
import { type TicketGrant, ticketRequestOf } from './carriers/data/tickets.ts';
import type { AskPeer } from './carriers/spliced/open.ts';
import { type SpliceCounters, SpliceRelay } from './carriers/spliced/relay.ts';
import { type SpliceServeContext, serveMeet, serveSplice } from './carriers/spliced/serve.ts';
import { meetRequestOf, spliceRequestOf } from './carriers/spliced/wire.ts';
import { encodeFrame, readFrame } from './carriers/stream/frames.ts';
import { refuseStream, type StreamServeContext, serveStream } from './carriers/stream/serve.ts';
import {
  DATA_CONNECT_TIMEOUT_MS,
  HEADER_WAIT_MS,
  MAX_HEADER_BYTES,
  MAX_REVERSE_BATCH,
  MAX_REVERSE_DIALS_PER_PEER,
  OPEN_TIMEOUT_MS,
  TCP_PROTOCOL,
} from './constants.ts';
import {
  DataPathOffError,
  PortNotExposedError,
  TunnelLimitError,
  TunnelPeerUnreachableError,
  UnknownServiceError,
} from './errors.ts';
import type { TunnelRequest } from './handshake.ts';
import type { LocalTarget } from './in-process.ts';
import type { TunnelLedger } from './ledger.ts';
import type { ServiceDirectory } from './services.ts';

/** Options of the server side. */
export interface TunnelServerInit {
  /** Concurrent tunnels to or from one peer: sets libp2p's stream limits for the protocol. */
  maxPerPeer: number;
  /** Coalesce socket reads up to this many bytes per stream write. */
  coalesceBytes: number;
  /** Where the data listener binds (port 0: any free port), or undefined for no data path. */
  dataListen?: DataListenerInit;
}

/** What the server side uses; the mesh is read at use time (it may start after this is built). */
export interface TunnelServerComponents {
  mesh: Pick<Mesh, 'libp2p' | 'name' | 'membership'>;
  services: ServiceDirectory;
  ledger: TunnelLedger;
  logger: Logger;
  /** Takes a data connection a peer dialed back at our request (the client side's pool). */
  adopt(peer: string, data: DataConnection): void;
  /** Sends a header to a member and returns its reply (the client side's stream pool). */
  ask: AskPeer;
}

/** The server side: the protocol handler and the data listener. */
export class TunnelServer {
  readonly #init: TunnelServerInit;
  readonly #c: TunnelServerComponents;
  readonly #listener: DataListener | undefined;
  readonly #context: StreamServeContext & DataServeContext;
  /** Splices for other members (spliced/relay.ts), with the data listener. */
  readonly #relay: SpliceRelay | undefined;
  readonly #splicing: SpliceServeContext;
  /** Reverse connections being dialed, per peer. */
  readonly #dialingBack = new Map<string, number>();
  #handling = false;

  constructor(init: TunnelServerInit, components: TunnelServerComponents) {
    this.#init = init;
    this.#c = components;
    this.#context = {
      ledger: components.ledger,
      targetFor: (req: TunnelRequest) => this.targetFor(req),
      coalesceBytes: init.coalesceBytes,
      logger: components.logger,
    };
    const isMember = (peer: string) => components.mesh.membership.isMember(peer);
    this.#relay = init.dataListen ? new SpliceRelay({ isMember, logger: components.logger }) : undefined;
    const relay = this.#relay;
    this.#listener = init.dataListen
      ? new DataListener(init.dataListen, {
          logger: components.logger,
          onConnection: (ticket, socket, raw) => this.#acceptData(ticket, socket, raw),
          onSplice: (ticket, secret, raw, rest) => relay?.arrive(ticket, secret, raw, rest) ?? false,
        })
      : undefined;
    const libp2p = () => components.mesh.libp2p;
    this.#splicing = {
      get self() {
        return libp2p().peerId.toString();
      },
      listener: this.#listener,
      relay,
      isMember,
      connections: (peer) => libp2p().getConnections(peerIdFromString(peer)),
      addresses: (peer) =>
        libp2p()
          .peerStore.get(peerIdFromString(peer))
          .then((p) => p.addresses.map((a) => a.multiaddr))
          .catch(() => []),
      ask: components.ask,
      logger: components.logger,
    };
  }

  /** The splices this node carries as a relay. */
  splices(): SpliceCounters {
    return this.#relay?.counters() ?? { active: 0, waiting: 0, total: 0, bytes: 0 };
  }

  /** The data listener's port, or null when the data path is off. */
  get dataPort(): number | null {
    return this.#listener?.port ?? null;
  }

  /** The splice listener's port (this node as a relay); null when it relays no splices or the data path is off. */
  get splicePort(): number | null {
    return this.#listener?.splicePort || null;
  }

  /** Registers the protocol handler, then binds the data listener. */
  async start(): Promise<void> {
    const limit = this.#init.maxPerPeer + 16;
    await this.#c.mesh.libp2p.handle(TCP_PROTOCOL, (stream, conn) => this.#serve(stream, conn), {
      runOnLimitedConnection: true,
      // libp2p's per-protocol defaults (32 in, 64 out) are far below a busy forward; our own
      // limits apply on top, with a small margin so that we answer with a clear refusal.
      maxInboundStreams: limit,
      maxOutboundStreams: limit,
    });
    this.#handling = true;
    await this.#listener?.start();
  }

  /** Unregisters the handler and closes the data listener. */
  async stop(): Promise<void> {
    if (this.#handling) await this.#c.mesh.libp2p.unhandle(TCP_PROTOCOL).catch(() => {});
    this.#handling = false;
    this.#listener?.stop();
    this.#relay?.stop();
  }

  /**
   * Tickets of our own data listener for `peer` to dial back with (reverse.ts), and where the
   * listener is; undefined when the data path is off.
   */
  reverseGrant(peer: string, count: number): TicketGrant | undefined {
    const listener = this.#listener;
    if (!listener) return undefined;
    const tickets = listener.issue(peer, Math.min(count, MAX_REVERSE_BATCH), true);
    const host = listener.host;
    return { port: listener.port, tickets, ...(host && isIP(host) ? { host } : {}) };
  }

  /** Forgets a peer's unused data tickets (it was revoked). */
  forget(peer: string): void {
    this.#listener?.forget(peer);
    this.#relay?.drop(peer);
  }

  async #serve(stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString();
    if (!this.#c.mesh.membership.isMember(peer)) {
      stream.abort(new Error('not a member'));
      return;
    }
    // The opener may hold this stream ready in its pool for a while before it sends a header:
    // it only becomes a tunnel (counted, limited) once the header arrives.
    let header: Awaited<ReturnType<typeof readFrame>>;
    try {
      header = await readFrame(stream, MAX_HEADER_BYTES, AbortSignal.timeout(HEADER_WAIT_MS));
    } catch (err) {
      if ((err as PlexusError).code === 'STREAM_CLOSED') stream.abort(err as Error);
      else await refuseStream(stream, err as Error);
      return;
    }
    let tickets: number | undefined;
    try {
      tickets = ticketRequestOf(header.value);
    } catch (err) {
      await refuseStream(stream, err as Error);
      return;
    }
    if (tickets !== undefined) return this.#serveTickets(stream, peer, tickets);
    let reverse: TicketGrant | undefined;
    try {
      reverse = reverseRequestOf(header.value);
    } catch (err) {
      await refuseStream(stream, err as Error);
      return;
    }
    if (reverse) return this.#serveReverse(stream, conn, peer, reverse);
    try {
      const splice = spliceRequestOf(header.value);
      if (splice) return serveSplice(stream, peer, splice, this.#splicing);
      const meet = meetRequestOf(header.value);
      if (meet) return serveMeet(stream, peer, meet, this.#splicing);
    } catch (err) {
      await refuseStream(stream, err as Error);
      return;
    }
    return serveStream(stream, peer, header, this.#context);
  }

  /** Answers a request for data tickets (docs/tunnels.md, data connections), then ends it. */
  async #serveTickets(stream: Stream, peer: string, count: number): Promise<void> {
    const listener = this.#listener;
    if (!listener) {
      await refuseStream(stream, new DataPathOffError());
      return;
    }
    try {
      const tickets = listener.issue(peer, count);
      const host = listener.host;
      stream.send(
        encodeFrame({ ok: true, port: listener.port, ...(host && isIP(host) ? { host } : {}), tickets }),
      );
      await stream.close({ signal: AbortSignal.timeout(OPEN_TIMEOUT_MS) });
    } catch (err) {
      await refuseStream(stream, err as Error);
    }
  }

  /**
   * Answers a request to dial back (reverse.ts): agree, then open one data connection per
   * ticket to the asker's listener, at an address where it is known to be, and serve tunnels on
   * them as on accepted ones.
   */
  async #serveReverse(stream: Stream, conn: Connection, peer: string, grant: TicketGrant): Promise<void> {
    const dialing = this.#dialingBack.get(peer) ?? 0;
    const known = await this.#c.mesh.libp2p.peerStore
      .get(conn.remotePeer)
      .then((p) => p.addresses.map((a) => a.multiaddr))
      .catch(() => []);
    const hosts = reverseHosts(grant, conn, known);
    try {
      if (dialing + grant.tickets.length > MAX_REVERSE_DIALS_PER_PEER)
        throw new TunnelLimitError('too many reverse data connections at once');
      if (hosts.length === 0) throw new TunnelPeerUnreachableError(peer, 'no address to dial back');
      stream.send(encodeFrame({ ok: true }));
      await stream.close({ signal: AbortSignal.timeout(OPEN_TIMEOUT_MS) });
    } catch (err) {
      await refuseStream(stream, err as Error);
      return;
    }
    this.#dialingBack.set(peer, dialing + grant.tickets.length);
    for (const ticket of grant.tickets)
      void this.#dialBack(peer, hosts, grant.port, ticket).finally(() => {
        const left = (this.#dialingBack.get(peer) ?? 1) - 1;
        if (left <= 0) this.#dialingBack.delete(peer);
        else this.#dialingBack.set(peer, left);
      });
  }

  /** One reverse connection: the first of `hosts` that answers. */
  async #dialBack(peer: string, hosts: string[], port: number, ticket: TicketGrant['tickets'][number]) {
    for (const host of hosts) {
      try {
        const data = await dial(host, port, ticket, AbortSignal.timeout(DATA_CONNECT_TIMEOUT_MS * 2));
        if (!this.#c.mesh.membership.isMember(peer)) return void resetData(data);
        return void serveData({ peer, reverse: false }, data, this.#context);
      } catch (err) {
        this.#c.logger.debug(
          { peer, host, port, err: (err as Error).message },
          'reverse data connection failed',
        );
      }
    }
  }

  /** A data connection redeemed its ticket: serve it if its peer is still a member. */
  #acceptData(ticket: RedeemedTicket, socket: TLSSocket, raw: Socket): void {
    if (!this.#c.mesh.membership.isMember(ticket.peer)) return void raw.resetAndDestroy();
    const data = dataConnection(socket, raw);
    // A connection it dialed back at our request: ours to open tunnels on (the client side).
    if (ticket.reverse) return void this.#c.adopt(ticket.peer, data);
    void serveData(ticket, data, this.#context);
  }

  /** Where a request may go on this node: only exposed services and ports, or in-process services. */
  targetFor(req: TunnelRequest): LocalTarget {
    const services = this.#c.services;
    if ('service' in req) {
      const target = services.targetOf(req.service);
      if (target === undefined) throw new UnknownServiceError(req.service, this.#c.mesh.name);
      return target;
    }
    if (!services.isExposedPort(req.port)) throw new PortNotExposedError(req.port, this.#c.mesh.name);
    return req.port;
  }
}
