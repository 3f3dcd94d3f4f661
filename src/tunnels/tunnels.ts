/**
 * The tunnel service: serves `/plexus/tcp/1.0.0` to members (only exposed ports are reachable)
 * and opens tunnels to other nodes' services for forwards and the SOCKS proxy. It holds the
 * limits on concurrent tunnels per peer and in total, and counts what is open so that leaks
 * show up in `plexus status`.
 *
 * A tunnel has two possible paths (docs/tunnels.md, data connections): a data connection of
 * its own, used over
 * a direct link when the peer's data port answers, and the mesh stream, used otherwise (a
 * relayed link, a filtered data port). Both ask for the same `{service}` or `{port}`, get the
 * same refusals, and keep the same half-close and reset semantics.
 */
import { isIP, type Socket } from 'node:net';
import type { Connection, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Uint8ArrayList } from 'uint8arraylist';
import { PlexusError } from '../core/errors.ts';
import type { Logger } from '../logging/index.ts';
import type { Member } from '../mesh/membership.ts';
import type { PlexusLibp2p } from '../mesh/node.ts';
import {
  COALESCE_BYTES,
  HEADER_WAIT_MS,
  MAX_HEADER_BYTES,
  MAX_REPLY_BYTES,
  MAX_TICKET_REPLY_BYTES,
  MAX_TUNNELS_PER_PEER,
  MAX_TUNNELS_TOTAL,
  OPEN_TIMEOUT_MS,
  STREAM_HIGH_WATER_BYTES,
  TCP_PROTOCOL,
} from './constants.ts';
import { DataDialer, type DataPathState, type TicketGrant } from './data-dialer.ts';
import { DataListener, type RedeemedTicket } from './data-listener.ts';
import { deriveRecordKeys, type OpenedRecord, RecordOpener, RecordSealer } from './data-records.ts';
import { type DataConnection, readFirstRecord, spliceData, writeRecords } from './data-splice.ts';
import { PortNotExposedError, TunnelLimitError, TunnelProtocolError, UnknownServiceError } from './errors.ts';
import {
  encodeFrame,
  parseReply,
  parseRequest,
  parseTicketGrant,
  readFrame,
  type TunnelRequest,
  ticketRequestOf,
} from './header.ts';
import { connectLocal, pipeLocal } from './local-target.ts';
import type { ServiceDirectory } from './services.ts';
import { dataEventReader, SharedBufferReader } from './socket-reader.ts';
import { type SpliceResult, splice } from './splice.ts';
import { StreamPool } from './stream-pool.ts';
import type { Target } from './target.ts';

/** Options of the tunnel service. */
export interface TunnelsInit {
  /** Concurrent tunnels to or from one peer; default MAX_TUNNELS_PER_PEER. */
  maxPerPeer?: number;
  /** Concurrent tunnels in total; default MAX_TUNNELS_TOTAL. */
  maxTotal?: number;
  /** Coalesce socket reads up to this many bytes per stream write; default COALESCE_BYTES. */
  coalesceBytes?: number;
  /** Where the data listener binds (port 0: any free port), or undefined for no data path. */
  dataListen?: { host: string; port: number };
}

/** What the tunnels use from the mesh. */
export interface TunnelsComponents {
  libp2p: PlexusLibp2p;
  /** Name → live member; throws UnknownNodeError. */
  resolve(name: string): Member;
  isMember(peerId: string): boolean;
  selfPeerId: string;
  selfName: string;
  services: ServiceDirectory;
  logger: Logger;
}

/** An opened tunnel, not yet joined to a client socket. */
export interface OpenedTunnel {
  /** `direct`, `relayed` or `local` (the target is this node). */
  path: 'direct' | 'relayed' | 'local';
  /** What carries the bytes: a data connection of its own, the mesh stream, or local sockets. */
  carrier: 'data' | 'stream' | 'local';
  /**
   * Joins the client socket to the tunnel; resolves when both are closed. `firstBytes` were
   * already read from the socket (pipelined after a SOCKS request) and go out first.
   */
  attach(socket: Socket, firstBytes?: Uint8Array): Promise<void>;
  /** Gives the tunnel up without a client (e.g. the SOCKS client went away). */
  abort(): void;
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
  /** Per peer: whether its data listener is reachable from here. */
  dataPaths: Record<string, DataPathState>;
}

const MAX_READ_BUFFER = 64 * 1024 * 1024;
/** Client bytes kept while a data connection's answer is on its way, to resend over the stream. */
const MAX_EARLY_KEPT_BYTES = 1024 * 1024;
/** How long a name → member answer is reused (revocations clear it at once). */
const RESOLVE_CACHE_MS = 2_000;
const isRelayed = (conn: Connection) => conn.remoteAddr.toString().includes('/p2p-circuit');

/** The tunnel service. */
export class Tunnels {
  readonly #c: TunnelsComponents;
  readonly #maxPerPeer: number;
  readonly #maxTotal: number;
  readonly #coalesce: number;
  readonly #perPeer = new Map<string, number>();
  readonly #live = new Set<{ peer?: string; close(): void }>();
  readonly #counters = {
    inbound: 0,
    outbound: 0,
    opened: 0,
    openedData: 0,
    refused: 0,
    bytesSent: 0,
    bytesReceived: 0,
  };
  #started = false;
  readonly #streams: StreamPool;
  readonly #dialer: DataDialer;
  readonly #listener: DataListener | undefined;
  readonly #resolved = new Map<string, { member: Member; until: number }>();
  #dataWaiting = 0;

  constructor(init: TunnelsInit, components: TunnelsComponents) {
    this.#c = components;
    this.#maxPerPeer = init.maxPerPeer ?? MAX_TUNNELS_PER_PEER;
    this.#maxTotal = init.maxTotal ?? MAX_TUNNELS_TOTAL;
    this.#coalesce = init.coalesceBytes ?? COALESCE_BYTES;
    this.#streams = new StreamPool((conn, signal) => this.#newStream(conn, signal));
    this.#dialer = new DataDialer({
      requestTickets: (conn, count, signal) => this.#requestTickets(conn, count, signal),
      logger: components.logger,
    });
    this.#listener = init.dataListen
      ? new DataListener(init.dataListen, {
          logger: components.logger,
          onConnection: (ticket, socket, rest) => void this.#serveData(ticket, socket, rest),
        })
      : undefined;
  }

  /** Registers the protocol handler. */
  async start(): Promise<void> {
    await this.#c.libp2p.handle(TCP_PROTOCOL, (stream, conn) => this.#serve(stream, conn), {
      runOnLimitedConnection: true,
      // libp2p's per-protocol defaults (32 in, 64 out) are far below a busy forward; our own
      // limits apply on top, with a small margin so that we answer with a clear refusal.
      maxInboundStreams: this.#maxPerPeer + 16,
      maxOutboundStreams: this.#maxPerPeer + 16,
    });
    this.#started = true;
    await this.#listener?.start();
  }

  /** Unregisters the handler and resets every open tunnel. */
  async stop(): Promise<void> {
    if (this.#started) await this.#c.libp2p.unhandle(TCP_PROTOCOL).catch(() => {});
    this.#started = false;
    this.#streams.stop();
    this.#dialer.stop();
    this.#listener?.stop();
    for (const t of [...this.#live]) t.close();
  }

  /** Cuts every tunnel to or from a peer and forgets its data tickets (it was revoked). */
  dropPeer(peer: string): void {
    this.#resolved.clear();
    this.#dialer.drop(peer);
    this.#listener?.forget(peer);
    for (const t of [...this.#live]) if (t.peer === peer) t.close();
  }

  /** Opens data connections to a node ahead of use (a forward to it was added). */
  warm(node: string): void {
    try {
      const member = this.resolve(node);
      const conn = this.#c.libp2p
        .getConnections(peerIdFromString(member.peerId))
        .find((c) => c.status === 'open' && !isRelayed(c));
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
    const member = this.#c.resolve(name);
    if (this.#resolved.size > 4096) this.#resolved.clear();
    this.#resolved.set(name, { member, until: Date.now() + RESOLVE_CACHE_MS });
    return member;
  }

  /** Open tunnels and lifetime totals. */
  counters(): TunnelCounters {
    const c = this.#counters;
    return {
      active: c.inbound + c.outbound,
      ...c,
      dataPooled: this.#dialer.pooled(),
      dataWaiting: this.#dataWaiting,
      dataPort: this.#listener?.port ?? null,
      dataPaths: this.#dialer.states(),
    };
  }

  #acquire(peer: string): () => void {
    const total = this.#counters.inbound + this.#counters.outbound;
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

  #track(socket: Socket, other: Stream | Socket | undefined, peer?: string): () => void {
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

  /** A client going away is routine (debug); the mesh side failing is worth an info line. */
  #logReset(r: SpliceResult, where: Record<string, unknown>): void {
    const fields = { ...where, error: r.error, sent: r.sent, received: r.received };
    if (r.error?.startsWith('stream')) this.#c.logger.info(fields, 'tunnel cut on the mesh side');
    else this.#c.logger.debug(fields, 'tunnel reset by the local side');
  }

  // ---- server side -------------------------------------------------------------------------

  async #serve(stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString();
    const log = this.#c.logger;
    if (!this.#c.isMember(peer)) {
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
      else await this.#refuse(stream, err as Error);
      return;
    }
    let tickets: number | undefined;
    try {
      tickets = ticketRequestOf(header.value);
    } catch (err) {
      await this.#refuse(stream, err as Error);
      return;
    }
    if (tickets !== undefined) return this.#serveTickets(stream, peer, tickets);
    let release: () => void;
    try {
      release = this.#acquire(peer);
    } catch (err) {
      this.#counters.refused++;
      await this.#refuse(stream, err as PlexusError);
      return;
    }
    this.#counters.inbound++;
    let socket: Socket | undefined;
    try {
      const req = parseRequest(header.value);
      const port = this.#portFor(req);
      socket = await connectLocal(port);
      stream.send(encodeFrame({ ok: true }));
      this.#counters.opened++;
      const untrack = this.#track(socket, stream, peer);
      const r = await splice(socket, stream, {
        coalesceBytes: this.#coalesce,
        initial: header.rest,
        maxReadBufferBytes: MAX_READ_BUFFER,
        highWaterBytes: STREAM_HIGH_WATER_BYTES,
      });
      untrack();
      this.#counters.bytesSent += r.sent;
      this.#counters.bytesReceived += r.received;
      if (!r.clean) this.#logReset(r, { peer, port });
    } catch (err) {
      socket?.destroy();
      this.#counters.refused++;
      if (!(err instanceof PlexusError)) log.warn({ err, peer }, 'tunnel failed');
      await this.#refuse(stream, err as Error);
    } finally {
      this.#counters.inbound--;
      release();
    }
  }

  /** Answers a request for data tickets (docs/tunnels.md, data connections), then ends it. */
  async #serveTickets(stream: Stream, peer: string, count: number): Promise<void> {
    const listener = this.#listener;
    if (!listener) {
      await this.#refuse(
        stream,
        new PlexusError('DATA_PATH_OFF', 'this node has no tunnel data port', 'unavailable'),
      );
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
      await this.#refuse(stream, err as Error);
    }
  }

  /** A data connection redeemed its ticket: read its header, then serve it like a stream. */
  async #serveData(ticket: RedeemedTicket, socket: Socket, early: Buffer): Promise<void> {
    const peer = ticket.peer;
    if (!this.#c.isMember(peer)) return void socket.resetAndDestroy();
    const keys = deriveRecordKeys(ticket.secret, 'server');
    const data: DataConnection = {
      socket,
      reader: dataEventReader(socket),
      sealer: new RecordSealer(keys.send),
      opener: new RecordOpener(keys.receive),
    };
    // A pooled connection may wait a while for its header; it is tracked so that stopping the
    // agent or revoking the peer closes it.
    const untrackIdle = this.#track(socket, undefined, peer);
    let header: { value: unknown; rest: OpenedRecord[] };
    this.#dataWaiting++;
    try {
      header = await readFirstRecord(data, AbortSignal.timeout(HEADER_WAIT_MS), MAX_HEADER_BYTES, early);
    } catch {
      if (!socket.destroyed) socket.resetAndDestroy();
      return;
    } finally {
      this.#dataWaiting--;
      untrackIdle();
    }
    const answer = (body: unknown) =>
      writeRecords(socket, data.sealer.seal(Buffer.from(JSON.stringify(body))));
    const refuse = (err: unknown) => {
      const body =
        err instanceof PlexusError
          ? { ok: false, code: err.code, message: err.message }
          : { ok: false, code: 'TUNNEL_FAILED', message: 'the tunnel failed on the far side' };
      answer(body);
      writeRecords(socket, data.sealer.fin());
      socket.end();
      // Whatever the opener already sent behind its header is dropped with the connection.
      setTimeout(() => socket.destroy(), 2000).unref();
    };
    let release: () => void;
    try {
      release = this.#acquire(peer);
    } catch (err) {
      this.#counters.refused++;
      return refuse(err);
    }
    this.#counters.inbound++;
    let target: Socket | undefined;
    try {
      const port = this.#portFor(parseRequest(header.value));
      const targetReader = new SharedBufferReader();
      target = await connectLocal(port, targetReader);
      answer({ ok: true });
      this.#counters.opened++;
      this.#counters.openedData++;
      const untrack = this.#track(target, socket, peer);
      const r = await spliceData(target, data, { initial: header.rest, localReader: targetReader });
      untrack();
      this.#counters.bytesSent += r.sent;
      this.#counters.bytesReceived += r.received;
      if (!r.clean) this.#logReset(r, { peer, port, carrier: 'data' });
    } catch (err) {
      target?.destroy();
      this.#counters.refused++;
      if (!(err instanceof PlexusError)) this.#c.logger.warn({ err, peer }, 'tunnel failed');
      refuse(err);
    } finally {
      this.#counters.inbound--;
      release();
    }
  }

  async #refuse(stream: Stream, err: Error): Promise<void> {
    const body =
      err instanceof PlexusError
        ? { ok: false, code: err.code, message: err.message }
        : { ok: false, code: 'TUNNEL_FAILED', message: 'the tunnel failed on the far side' };
    try {
      if (stream.writeStatus === 'writable') {
        stream.send(encodeFrame(body));
        await stream.close({ signal: AbortSignal.timeout(2000) });
      }
      // Anything the opener already sent after its header is dropped with the stream.
      stream.abort(new Error('refused'));
    } catch {
      stream.abort(new Error('refused'));
    }
  }

  #portFor(req: TunnelRequest): number {
    const services = this.#c.services;
    if ('service' in req) {
      const port = services.portOf(req.service);
      if (port === undefined) throw new UnknownServiceError(req.service, this.#c.selfName);
      return port;
    }
    if (!services.isExposedPort(req.port)) throw new PortNotExposedError(req.port, this.#c.selfName);
    return req.port;
  }

  // ---- client side -------------------------------------------------------------------------

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
    if (member.peerId === this.#c.selfPeerId) return this.#openLocal(req);
    const release = this.#acquire(member.peerId);
    this.#counters.outbound++;
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      this.#counters.outbound--;
      release();
    };
    const fail = (err: unknown): never => {
      done();
      this.#counters.refused++;
      if (err instanceof PlexusError) throw err;
      throw new PlexusError(
        'PEER_UNREACHABLE',
        `cannot open a tunnel to '${member.name}': ${(err as Error).message}`,
        'unavailable',
      );
    };
    const sig = AbortSignal.any([AbortSignal.timeout(OPEN_TIMEOUT_MS), ...(signal ? [signal] : [])]);
    let conn: Connection;
    try {
      conn = await this.#connectionTo(member, sig);
    } catch (err) {
      return fail(err);
    }
    const tunnel = { member, req, sig, optimistic: opts.optimistic === true, done, fail };
    if (!isRelayed(conn)) {
      const data = await this.#dialer.take(member.peerId, conn, sig);
      if (data) return this.#openOverData(tunnel, data, conn);
    }
    return this.#openOverStream(tunnel, conn);
  }

  /** The far side's reply, as an error when it refused. */
  #checkReply(value: unknown): void {
    const reply = parseReply(value);
    if (!reply.ok)
      throw new PlexusError(
        reply.code,
        reply.message,
        reply.code === 'UNKNOWN_SERVICE' ? 'not_found' : 'unavailable',
      );
    this.#counters.opened++;
  }

  /** A tunnel over a data connection of its own (a direct link whose data port answers). */
  async #openOverData(t: OpeningTunnel, data: DataConnection, conn: Connection): Promise<OpenedTunnel> {
    const { member, sig } = t;
    const answer = async () => {
      const { value, rest } = await readFirstRecord(data, sig, MAX_REPLY_BYTES);
      this.#checkReply(value);
      this.#counters.openedData++;
      return rest;
    };
    // A data connection that dies before the far side answers (its agent restarted, say, while
    // the connection sat in the pool) is not the target refusing: the tunnel goes over the mesh
    // stream instead, and the client never notices.
    const fallsBack = (err: unknown) =>
      !sig.aborted && !(err instanceof PlexusError && !(err instanceof TunnelProtocolError));
    let rest: OpenedRecord[] | undefined;
    try {
      writeRecords(data.socket, data.sealer.seal(Buffer.from(JSON.stringify(t.req))));
      if (!t.optimistic) rest = await answer();
    } catch (err) {
      data.socket.destroy();
      if (fallsBack(err)) return this.#openOverStream(t, conn);
      return t.fail(err);
    }
    return {
      path: 'direct',
      carrier: 'data',
      attach: async (socket, firstBytes) => {
        const untrack = this.#track(socket, data.socket, member.peerId);
        try {
          if (rest === undefined) {
            // Optimistic: send what the client says while the answer is on its way, and keep a
            // copy (bounded) to send again over the stream if this connection turns out dead.
            const kept: Buffer[] = [];
            let keptBytes = 0;
            const early = (d: Buffer) => {
              keptBytes += d.byteLength;
              if (keptBytes <= MAX_EARLY_KEPT_BYTES) kept.push(d);
              if (!writeRecords(data.socket, data.sealer.seal(d))) socket.pause();
            };
            socket.on('data', early);
            try {
              rest = await answer();
            } catch (err) {
              untrack();
              data.socket.destroy();
              if (!fallsBack(err) || keptBytes > MAX_EARLY_KEPT_BYTES) return t.fail(err);
              const again = await this.#openOverStream(t, conn);
              return again.attach(socket, Buffer.concat([...(firstBytes ? [firstBytes] : []), ...kept]));
            } finally {
              socket.off('data', early);
            }
          }
          const r = await spliceData(socket, data, { initial: rest, firstBytes });
          this.#counters.bytesSent += r.sent;
          this.#counters.bytesReceived += r.received;
          if (!r.clean) this.#logReset(r, { node: member.name, carrier: 'data' });
        } finally {
          untrack();
          t.done();
        }
      },
      abort: () => {
        data.socket.destroy();
        t.done();
      },
    };
  }

  /** A tunnel over a `/plexus/tcp/1.0.0` stream on the mesh connection (relayed or direct). */
  async #openOverStream(t: OpeningTunnel, conn: Connection): Promise<OpenedTunnel> {
    const { member, sig } = t;
    // Reads the far side's answer; after it, the stream carries raw bytes.
    const answer = async (s: Stream) => {
      const { value, rest } = await readFrame(s, MAX_REPLY_BYTES, sig);
      this.#checkReply(value);
      return rest;
    };
    let stream: Stream | undefined;
    let rest: Uint8ArrayList | undefined;
    try {
      stream = await this.#streams.take(member.peerId, conn, sig);
      if (this.#started) this.#streams.refill(member.peerId, conn);
      stream.send(encodeFrame(t.req));
      if (!t.optimistic) rest = await answer(stream);
    } catch (err) {
      stream?.abort(err as Error);
      return t.fail(err);
    }
    const s = stream;
    return {
      path: isRelayed(conn) ? 'relayed' : 'direct',
      carrier: 'stream',
      attach: async (socket, firstBytes) => {
        const untrack = this.#track(socket, s, member.peerId);
        try {
          if (rest === undefined) {
            // Optimistic: send what the client says while the answer is on its way.
            const early = (d: Buffer) => {
              if (s.writeStatus === 'writable' && !s.send(d)) socket.pause();
            };
            socket.on('data', early);
            try {
              rest = await answer(s);
            } catch (err) {
              untrack();
              s.abort(err as Error);
              return t.fail(err);
            } finally {
              socket.off('data', early);
            }
          }
          const r = await splice(socket, s, {
            coalesceBytes: this.#coalesce,
            initial: rest,
            firstBytes,
            maxReadBufferBytes: MAX_READ_BUFFER,
            highWaterBytes: STREAM_HIGH_WATER_BYTES,
          });
          this.#counters.bytesSent += r.sent;
          this.#counters.bytesReceived += r.received;
          if (!r.clean) this.#logReset(r, { node: member.name });
        } finally {
          untrack();
          t.done();
        }
      },
      abort: () => {
        s.abort(new Error('client went away'));
        t.done();
      },
    };
  }

  /** Asks a peer for data tickets over a stream on the mesh connection. */
  async #requestTickets(conn: Connection, count: number, signal: AbortSignal): Promise<TicketGrant> {
    const stream = await this.#streams.take(conn.remotePeer.toString(), conn, signal);
    try {
      stream.send(encodeFrame({ tickets: count }));
      const { value } = await readFrame(stream, MAX_TICKET_REPLY_BYTES, signal);
      const grant = parseTicketGrant(value, count);
      await stream.close({ signal }).catch(() => stream.abort(new Error('closing')));
      return grant;
    } catch (err) {
      stream.abort(err as Error);
      throw err;
    }
  }

  #newStream(conn: Connection, signal: AbortSignal): Promise<Stream> {
    return conn.newStream(TCP_PROTOCOL, {
      signal,
      runOnLimitedConnection: true,
      maxOutboundStreams: this.#maxPerPeer + 16,
    });
  }

  /** The best connection to a member: a direct one if any, else a relayed one, else a dial. */
  async #connectionTo(member: Member, signal: AbortSignal): Promise<Connection> {
    const peer = peerIdFromString(member.peerId);
    const conns = this.#c.libp2p.getConnections(peer).filter((c) => c.status === 'open');
    const direct = conns.find((c) => !isRelayed(c));
    if (direct) return direct;
    if (conns[0]) return conns[0];
    return this.#c.libp2p.dial(peer, { signal });
  }

  async #openLocal(req: TunnelRequest): Promise<OpenedTunnel> {
    const port = this.#portFor(req);
    const target = await connectLocal(port);
    return {
      path: 'local',
      carrier: 'local',
      attach: async (socket, firstBytes) => {
        const untrack = this.#track(socket, target);
        await pipeLocal(socket, target, firstBytes);
        untrack();
      },
      abort: () => target.destroy(),
    };
  }
}

/** A tunnel being opened: what it asks for, and how it settles its counters. */
interface OpeningTunnel {
  member: Member;
  req: TunnelRequest;
  sig: AbortSignal;
  optimistic: boolean;
  done(): void;
  fail(err: unknown): never;
}
