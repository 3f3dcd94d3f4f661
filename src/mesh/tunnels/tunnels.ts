/**
 * The tunnel service: serves `/plexus/tcp/1.0.0` to members (only exposed ports are reachable)
 * and opens tunnels to other nodes' services for forwards and the SOCKS proxy. It holds the
 * limits on concurrent tunnels per peer and in total, and counts what is open so that leaks
 * show up in `plexus status`.
 */
import { connect, type Socket } from 'node:net';
import type { Connection, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Uint8ArrayList } from 'uint8arraylist';
import { PlexusError } from '../../errors.ts';
import type { Logger } from '../../logging/index.ts';
import type { Member } from '../membership.ts';
import type { PlexusLibp2p } from '../node.ts';
import {
  COALESCE_BYTES,
  HEADER_WAIT_MS,
  LOOPBACK,
  MAX_HEADER_BYTES,
  MAX_REPLY_BYTES,
  MAX_TUNNELS_PER_PEER,
  MAX_TUNNELS_TOTAL,
  OPEN_TIMEOUT_MS,
  POOL_IDLE_MS,
  STREAM_HIGH_WATER_BYTES,
  TARGET_CONNECT_TIMEOUT_MS,
  TCP_PROTOCOL,
} from './constants.ts';
import { PortNotExposedError, TargetRefusedError, TunnelLimitError, UnknownServiceError } from './errors.ts';
import { encodeFrame, parseReply, parseRequest, readFrame, type TunnelRequest } from './header.ts';
import type { ServiceDirectory } from './services.ts';
import { type SpliceResult, splice } from './splice.ts';
import type { Target } from './target.ts';

/** Options of the tunnel service. */
export interface TunnelsInit {
  /** Concurrent tunnels to or from one peer; default MAX_TUNNELS_PER_PEER. */
  maxPerPeer?: number;
  /** Concurrent tunnels in total; default MAX_TUNNELS_TOTAL. */
  maxTotal?: number;
  /** Coalesce socket reads up to this many bytes per stream write; default COALESCE_BYTES. */
  coalesceBytes?: number;
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
}

const MAX_READ_BUFFER = 64 * 1024 * 1024;

interface PoolEntry {
  conn: Connection;
  stream?: Stream;
  timer: NodeJS.Timeout | undefined;
}

/** The tunnel service. */
export class Tunnels {
  readonly #c: TunnelsComponents;
  readonly #maxPerPeer: number;
  readonly #maxTotal: number;
  readonly #coalesce: number;
  readonly #perPeer = new Map<string, number>();
  readonly #live = new Set<{ close(): void }>();
  readonly #counters = { inbound: 0, outbound: 0, opened: 0, refused: 0, bytesSent: 0, bytesReceived: 0 };
  #started = false;
  readonly #pool = new Map<string, PoolEntry>();

  constructor(init: TunnelsInit, components: TunnelsComponents) {
    this.#c = components;
    this.#maxPerPeer = init.maxPerPeer ?? MAX_TUNNELS_PER_PEER;
    this.#maxTotal = init.maxTotal ?? MAX_TUNNELS_TOTAL;
    this.#coalesce = init.coalesceBytes ?? COALESCE_BYTES;
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
  }

  /** Unregisters the handler and resets every open tunnel. */
  async stop(): Promise<void> {
    if (this.#started) await this.#c.libp2p.unhandle(TCP_PROTOCOL).catch(() => {});
    this.#started = false;
    for (const p of this.#pool.values()) {
      clearTimeout(p.timer);
      p.stream?.abort(new Error('agent stopping'));
    }
    this.#pool.clear();
    for (const t of [...this.#live]) t.close();
  }

  /** Resolves a node name to a live member; throws UnknownNodeError. */
  resolve(name: string): Member {
    return this.#c.resolve(name);
  }

  /** Open tunnels and lifetime totals. */
  counters(): TunnelCounters {
    const c = this.#counters;
    return { active: c.inbound + c.outbound, ...c };
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

  #track(socket: Socket, stream: Stream | undefined): () => void {
    const entry = {
      close: () => {
        if (!socket.destroyed) socket.resetAndDestroy();
        stream?.abort(new Error('agent stopping'));
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
      const untrack = this.#track(socket, stream);
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
    const member = this.#c.resolve(target.node);
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
    const fail = (err: unknown, stream: Stream | undefined): never => {
      stream?.abort(err as Error);
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
    // Reads the far side's answer; after it, the stream carries raw bytes.
    const answer = async (s: Stream) => {
      const { value, rest } = await readFrame(s, MAX_REPLY_BYTES, sig);
      const reply = parseReply(value);
      if (!reply.ok)
        throw new PlexusError(
          reply.code,
          reply.message,
          reply.code === 'UNKNOWN_SERVICE' ? 'not_found' : 'unavailable',
        );
      this.#counters.opened++;
      return rest;
    };
    let stream: Stream | undefined;
    let conn: Connection;
    let rest: Uint8ArrayList | undefined;
    try {
      conn = await this.#connectionTo(member, sig);
      stream = this.#takePooled(member.peerId, conn) ?? (await this.#newStream(conn, sig));
      this.#refill(member.peerId, conn);
      stream.send(encodeFrame(req));
      if (!opts.optimistic) rest = await answer(stream);
    } catch (err) {
      return fail(err, stream);
    }
    const path = conn.remoteAddr.toString().includes('/p2p-circuit') ? 'relayed' : 'direct';
    const s = stream;
    return {
      path,
      attach: async (socket, firstBytes) => {
        const untrack = this.#track(socket, s);
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
              return fail(err, s);
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
          done();
        }
      },
      abort: () => {
        s.abort(new Error('client went away'));
        done();
      },
    };
  }

  #newStream(conn: Connection, signal: AbortSignal): Promise<Stream> {
    return conn.newStream(TCP_PROTOCOL, {
      signal,
      runOnLimitedConnection: true,
      maxOutboundStreams: this.#maxPerPeer + 16,
    });
  }

  /**
   * A stream negotiated ahead of time on `conn`, if one is ready: opening a stream costs a
   * protocol-negotiation round trip, which is most of a short connection's added latency.
   */
  #takePooled(peer: string, conn: Connection): Stream | undefined {
    const p = this.#pool.get(peer);
    if (!p?.stream) return undefined;
    this.#pool.delete(peer);
    clearTimeout(p.timer);
    if (p.conn === conn && p.stream.status === 'open' && p.stream.writeStatus === 'writable') return p.stream;
    p.stream.abort(new Error('stale pooled stream'));
    return undefined;
  }

  /** Keeps one negotiated stream ready per peer that was used recently (not for idle peers). */
  #refill(peer: string, conn: Connection): void {
    if (!this.#started || this.#pool.has(peer)) return;
    const entry: PoolEntry = { conn, timer: undefined };
    this.#pool.set(peer, entry);
    this.#newStream(conn, AbortSignal.timeout(OPEN_TIMEOUT_MS)).then(
      (stream) => {
        if (this.#pool.get(peer) !== entry) return stream.abort(new Error('pool entry replaced'));
        entry.stream = stream;
        // Unused for a while: give it back, so idle peers hold nothing open.
        entry.timer = setTimeout(() => {
          if (this.#pool.get(peer) === entry) this.#pool.delete(peer);
          stream.abort(new Error('pooled stream idle'));
        }, POOL_IDLE_MS);
        entry.timer.unref();
        stream.addEventListener('close', () => {
          if (this.#pool.get(peer) === entry) {
            this.#pool.delete(peer);
            clearTimeout(entry.timer);
          }
        });
      },
      () => {
        if (this.#pool.get(peer) === entry) this.#pool.delete(peer);
      },
    );
  }

  /** The best connection to a member: a direct one if any, else a relayed one, else a dial. */
  async #connectionTo(member: Member, signal: AbortSignal): Promise<Connection> {
    const peer = peerIdFromString(member.peerId);
    const conns = this.#c.libp2p.getConnections(peer).filter((c) => c.status === 'open');
    const direct = conns.find((c) => !c.remoteAddr.toString().includes('/p2p-circuit'));
    if (direct) return direct;
    if (conns[0]) return conns[0];
    return this.#c.libp2p.dial(peer, { signal });
  }

  async #openLocal(req: TunnelRequest): Promise<OpenedTunnel> {
    const port = this.#portFor(req);
    const target = await connectLocal(port);
    return {
      path: 'local',
      attach: (socket, firstBytes) =>
        new Promise<void>((resolve) => {
          if (firstBytes?.length) target.write(firstBytes);
          const untrack = this.#track(socket, undefined);
          const untrack2 = this.#track(target, undefined);
          let closed = 0;
          const onClose = () => {
            if (++closed < 2) return;
            untrack();
            untrack2();
            resolve();
          };
          for (const [a, b] of [
            [socket, target],
            [target, socket],
          ] as const) {
            a.pipe(b);
            a.on('error', () => b.resetAndDestroy());
            a.on('close', onClose);
          }
        }),
      abort: () => target.destroy(),
    };
  }
}

/** Connects to an exposed port on loopback; refusal and timeout become TargetRefusedError. */
function connectLocal(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: LOOPBACK, port, allowHalfOpen: true, noDelay: true });
    const t = setTimeout(() => {
      socket.destroy();
      reject(new TargetRefusedError(`port ${port}`, 'timed out'));
    }, TARGET_CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(t);
      socket.removeAllListeners('error');
      // Errors are handled by whoever joins the socket; this keeps one in between from crashing.
      socket.on('error', () => {});
      socket.setKeepAlive(true, 60_000);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(t);
      socket.destroy();
      reject(new TargetRefusedError(`port ${port}`, err.code));
    });
  });
}
