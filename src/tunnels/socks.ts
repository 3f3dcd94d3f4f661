/**
 * A SOCKS5 proxy (RFC 1928) that only reaches the mesh: CONNECT with "no authentication"
 * (method 0x00) to `service.node`, `node:port`, or either with `.plexus` appended. Any other
 * host, an IP address, BIND or UDP ASSOCIATE is refused with the RFC's reply code, so the
 * proxy can never be used to reach the internet. It listens on loopback by default.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../logging/index.ts';
import type { OpenedTunnel } from './carriers/carrier.ts';
import { SOCKS_HANDSHAKE_TIMEOUT_MS, SOCKS_MAX_HANDSHAKE_BYTES } from './constants.ts';
import { ListenError } from './errors.ts';
import { socksTarget } from './targets.ts';
import type { Tunnels } from './tunnels.ts';

/** RFC 1928 reply codes. */
export const SocksReply = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

/** Maps a tunnel error code to the SOCKS reply a client understands. */
export function socksReplyFor(code: string | undefined): number {
  switch (code) {
    case 'UNKNOWN_NODE':
    case 'PEER_UNREACHABLE':
      return SocksReply.hostUnreachable;
    case 'UNKNOWN_SERVICE':
    case 'TARGET_REFUSED':
      return SocksReply.connectionRefused;
    case 'PORT_NOT_EXPOSED':
      return SocksReply.notAllowed;
    default:
      return SocksReply.generalFailure;
  }
}

/** What the proxy uses. */
export interface SocksComponents {
  tunnels: Tunnels;
  logger: Logger;
}

/** The SOCKS5 server. */
export class SocksServer {
  readonly #listen: string;
  readonly #c: SocksComponents;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;

  /** `listen` is `HOST:PORT` (config `socks.listen`). */
  constructor(init: { listen: string }, components: SocksComponents) {
    this.#listen = init.listen;
    this.#c = components;
  }

  /** The bound address, once started. */
  get address(): string | undefined {
    const a = this.#server?.address();
    return a && typeof a === 'object' ? `${a.address}:${a.port}` : undefined;
  }

  /** Client connections currently open (leak checks). */
  get activeSockets(): number {
    return this.#sockets.size;
  }

  /** Starts listening; a busy port is an error that names the setting to change. */
  async start(): Promise<void> {
    const i = this.#listen.lastIndexOf(':');
    const host = this.#listen.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(this.#listen.slice(i + 1));
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.#accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new ListenError(
            this.#listen,
            `${err.code ?? err.message}; set socks.listen (or --socks) to another address or 'off'`,
          ),
        ),
      );
      server.listen({ host, port, backlog: 1024 }, () => resolve());
    });
    server.removeAllListeners('error');
    server.on('error', (err) => this.#c.logger.warn({ err }, 'socks listener error'));
    this.#server = server;
    this.#c.logger.info({ listen: this.address }, 'socks5 proxy listening');
  }

  /** Stops listening and resets every client. */
  async stop(): Promise<void> {
    for (const s of this.#sockets) s.resetAndDestroy();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  #accept(socket: Socket): void {
    socket.on('error', () => {});
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    const timer = setTimeout(() => socket.destroy(), SOCKS_HANDSHAKE_TIMEOUT_MS);
    socket.once('close', () => clearTimeout(timer));
    this.#handshake(socket)
      .then(async (joined) => {
        clearTimeout(timer);
        if (joined) await joined.tunnel.attach(socket, joined.rest);
      })
      .catch((err) => {
        this.#c.logger.debug({ err }, 'socks session failed');
        socket.destroy();
      });
  }

  /** Runs the RFC 1928 handshake; on success the tunnel is open and the reply sent. */
  async #handshake(socket: Socket): Promise<{ tunnel: OpenedTunnel; rest: Buffer } | undefined> {
    const reader = new HandshakeReader(socket);
    try {
      const [ver, nmethods] = await reader.take(2);
      if (ver !== 5) return fail(socket);
      const methods = await reader.take(nmethods);
      if (!methods.includes(0x00)) {
        socket.end(Buffer.from([5, 0xff])); // no acceptable method
        return undefined;
      }
      socket.write(Buffer.from([5, 0x00]));
      const [v, cmd, , atyp] = await reader.take(4);
      if (v !== 5) return fail(socket);
      let host: string | undefined;
      if (atyp === 0x01) await reader.take(4);
      else if (atyp === 0x04) await reader.take(16);
      else if (atyp === 0x03)
        host = Buffer.from(await reader.take((await reader.take(1))[0])).toString('latin1');
      else return reply(socket, SocksReply.addressTypeNotSupported);
      const portBytes = await reader.take(2);
      const port = (portBytes[0] << 8) | portBytes[1];
      if (cmd !== 0x01) return reply(socket, SocksReply.commandNotSupported);
      // Only mesh names: an IP address or an outside host name is refused (no open proxy).
      const target = host === undefined ? undefined : socksTarget(host, port);
      if (!target) return reply(socket, SocksReply.notAllowed);
      const rest = reader.release();
      const gone = new AbortController();
      socket.once('close', () => gone.abort());
      let tunnel: OpenedTunnel;
      try {
        tunnel = await this.#c.tunnels.open(target, gone.signal);
      } catch (err) {
        return reply(socket, socksReplyFor((err as { code?: string }).code));
      }
      if (socket.destroyed) {
        tunnel.abort();
        return undefined;
      }
      socket.write(Buffer.from([5, SocksReply.succeeded, 0, 1, 0, 0, 0, 0, 0, 0]));
      return { tunnel, rest };
    } catch {
      // Garbage, a short read or a client that went away: nothing to answer.
      return fail(socket);
    } finally {
      reader.release();
    }
  }
}

function fail(socket: Socket): undefined {
  if (!socket.destroyed) socket.destroy();
  return undefined;
}

function reply(socket: Socket, code: number): undefined {
  if (!socket.destroyed) socket.end(Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
  return undefined;
}

/** Reads exact byte counts from a socket during the handshake, with a size bound. */
class HandshakeReader {
  readonly #socket: Socket;
  #buf: Buffer = Buffer.alloc(0);
  #total = 0;
  #waiter: (() => void) | undefined;
  #ended = false;
  #released = false;
  readonly #onData = (chunk: Buffer) => {
    this.#total += chunk.length;
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    this.#waiter?.();
  };
  readonly #onEnd = () => {
    this.#ended = true;
    this.#waiter?.();
  };

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
  }

  async take(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      // Anything past a handshake's size before it completes is garbage, not a client.
      if (this.#ended || this.#total > SOCKS_MAX_HANDSHAKE_BYTES) throw new Error('bad socks handshake');
      await new Promise<void>((r) => {
        this.#waiter = r;
      });
      this.#waiter = undefined;
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Stops reading; returns what arrived after the handshake (the client's first bytes). */
  release(): Buffer {
    if (!this.#released) {
      this.#released = true;
      this.#socket.off('data', this.#onData);
      this.#socket.off('end', this.#onEnd);
      this.#socket.off('close', this.#onEnd);
      this.#socket.pause();
    }
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    return rest;
  }
}
