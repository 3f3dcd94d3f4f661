/**
 * The server end of tunnel data connections (docs/tunnels.md, data connections): a TCP
 * listener speaking TLS 1.3 keyed by tickets (tls.ts), and the tickets themselves. A member asks
 * for tickets over the Noise-encrypted mesh stream; each is a random 16-byte id (the PSK
 * identity) and a 32-byte secret (the PSK), good for one handshake within TICKET_TTL_MS: the
 * handshake that offers it takes it out of the table, so a replayed ticket finds nothing.
 *
 * A relay's members present splice preambles (spliced/wire.ts) on a second port, the splice port;
 * the data port speaks TLS from the first byte (#accept says why).
 *
 * Before its handshake, a connection is a stranger's: it gets a slot among MAX_DATA_HANDSHAKES,
 * at most MAX_DATA_HANDSHAKES_PER_SOURCE of them per source address (an IPv6 /64 counts as one
 * address), and DATA_HANDSHAKE_TIMEOUT_MS to finish, so one address flooding the port cannot
 * keep members out.
 */
import { randomBytes } from 'node:crypto';
import { createServer, isIPv4, type Server, type Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from '../../../logging/index.ts';
import {
  DATA_HANDSHAKE_TIMEOUT_MS,
  MAX_DATA_HANDSHAKES,
  MAX_DATA_HANDSHAKES_PER_SOURCE,
  MAX_TICKETS_PER_PEER,
  MAX_TICKETS_TOTAL,
  SPLICE_WAIT_MS,
  TICKET_TTL_MS,
} from '../../constants.ts';
import { TunnelLimitError } from '../../errors.ts';
import { PREAMBLE_BYTES, parsePreamble, SPLICE_MAGIC } from '../spliced/wire.ts';
import type { DataTicket } from './tickets.ts';
import { serverSecureContext, TLS_HIGH_WATER_BYTES, tlsModule } from './tls.ts';

/**
 * Takes a connection that presented a splice ticket (spliced/relay.ts), with the bytes that came
 * behind its preamble; false: refused (the listener resets it).
 */
export type SpliceArrival = (ticket: string, secret: Buffer, raw: Socket, rest: Buffer) => boolean;

/** Who a data connection's ticket was issued to, and what for. */
export interface RedeemedTicket {
  peer: string;
  /** A connection the peer dialed back at our request (reverse.ts): ours to open tunnels on. */
  reverse: boolean;
}

interface Issued {
  peer: string;
  secret: Buffer;
  expires: number;
  reverse: boolean;
}

/** Options of the listener. */
export interface DataListenerInit {
  host: string;
  port: number;
  /**
   * The port of the splice listener on the same host (0 or absent: any free port). A relay takes
   * its members' splice preambles there, and only there: the data port speaks TLS alone (see
   * #accept for why the two are apart).
   */
  splicePort?: number;
}

/**
 * Where the data listener binds, from config `tunnels.dataListen`: `auto` takes the host of the
 * first IP mesh listen address with any free port; `off` (or no IP listen address) gives none.
 * The splice listener binds the same host, on `tunnels.splicePort` (`auto`: any free port).
 */
export function dataListenOf(
  setting: string,
  meshListen: string[],
  splicePort: number | 'auto' = 'auto',
): DataListenerInit | undefined {
  const splice = splicePort === 'auto' ? {} : { splicePort };
  if (setting === 'off') return undefined;
  if (setting !== 'auto') {
    const at = setting.lastIndexOf(':');
    return {
      host: setting.slice(0, at).replace(/^\[|\]$/g, ''),
      port: Number(setting.slice(at + 1)),
      ...splice,
    };
  }
  for (const addr of meshListen) {
    const m = /^\/ip([46])\/([^/]+)\/tcp\//.exec(addr);
    if (m) return { host: m[2], port: 0, ...splice };
  }
  return undefined;
}

/**
 * The key a source address's handshakes are counted under: an IPv4 address, or the /64 prefix
 * of an IPv6 one (a single host commonly holds a whole /64).
 */
export function sourceKey(address: string | undefined): string {
  if (!address) return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (isIPv4(address)) return address;
  const [head, tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const full = address.includes('::')
    ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${full
    .slice(0, 4)
    .map((h) => Number.parseInt(h || '0', 16).toString(16))
    .join(':')}::/64`;
}

/** The data listener and its tickets. */
export class DataListener {
  readonly #init: DataListenerInit;
  readonly #logger: Logger;
  readonly #onConnection: (ticket: RedeemedTicket, socket: TLSSocket, raw: Socket) => void;
  readonly #onSplice: SpliceArrival | undefined;
  readonly #tickets = new Map<string, Issued>();
  readonly #perPeer = new Map<string, number>();
  /** Connections before their handshake, and how many per source. */
  readonly #pending = new Set<Socket>();
  readonly #perSource = new Map<string, number>();
  /** Made at the first connection (see tlsModule). */
  #context: SecureContext | undefined;
  #server: Server | undefined;
  /** Splice preambles (this node relays: `onSplice` given). */
  #spliceServer: Server | undefined;
  #sweep: NodeJS.Timeout | undefined;

  constructor(
    init: DataListenerInit,
    components: {
      logger: Logger;
      onConnection: (ticket: RedeemedTicket, socket: TLSSocket, raw: Socket) => void;
      /** Connections presenting a splice ticket (this node relays); absent: refused. */
      onSplice?: SpliceArrival;
    },
  ) {
    this.#init = init;
    this.#logger = components.logger;
    this.#onConnection = components.onConnection;
    this.#onSplice = components.onSplice;
  }

  /** The bound port (after start). */
  get port(): number {
    return (this.#server?.address() as { port: number } | null)?.port ?? 0;
  }

  /** The splice listener's bound port (after start), 0 when this node relays no splices. */
  get splicePort(): number {
    return (this.#spliceServer?.address() as { port: number } | null)?.port ?? 0;
  }

  /** The host clients should dial, when it is a specific address (not a wildcard). */
  get host(): string | undefined {
    const h = this.#init.host;
    return h === '0.0.0.0' || h === '::' ? undefined : h;
  }

  /** Connections that have not finished their handshake (status, tests). */
  get handshaking(): number {
    return this.#pending.size;
  }

  /** Binds the listener (and the splice listener, when this node relays). */
  async start(): Promise<void> {
    this.#server = await this.#listen(this.#init.port, (s) => this.#accept(s));
    try {
      if (this.#onSplice)
        this.#spliceServer = await this.#listen(this.#init.splicePort ?? 0, (s) => this.#acceptSplice(s));
    } catch (err) {
      this.#server.close();
      this.#server = undefined;
      throw err;
    }
    this.#sweep = setInterval(() => this.#expire(), TICKET_TTL_MS);
    this.#sweep.unref();
    this.#logger.info(
      {
        listen: `${this.#init.host}:${this.port}`,
        ...(this.#spliceServer ? { splices: `${this.#init.host}:${this.splicePort}` } : {}),
      },
      'tunnel data listener ready',
    );
  }

  async #listen(port: number, onConnection: (s: Socket) => void): Promise<Server> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.#init.host, port, backlog: 1024 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#logger.warn({ err }, 'tunnel data listener error'));
    return server;
  }

  /** Closes the listener, drops unredeemed tickets and unfinished handshakes. */
  stop(): void {
    clearInterval(this.#sweep);
    this.#tickets.clear();
    this.#perPeer.clear();
    for (const s of this.#pending) s.destroy();
    // Stop listening now; redeemed connections belong to their tunnels, which close them
    // (close()'s callback would wait for every one of them).
    this.#server?.close();
    this.#server = undefined;
    this.#spliceServer?.close();
    this.#spliceServer = undefined;
  }

  /**
   * Issues `count` tickets to a member (with `reverse`, for connections it dials back at our
   * request); throws TunnelLimitError past the limits.
   */
  issue(peer: string, count: number, reverse = false): DataTicket[] {
    this.#expire();
    const held = this.#perPeer.get(peer) ?? 0;
    if (held + count > MAX_TICKETS_PER_PEER || this.#tickets.size + count > MAX_TICKETS_TOTAL)
      throw new TunnelLimitError('too many unused data tickets');
    const out: DataTicket[] = [];
    const expires = Date.now() + TICKET_TTL_MS;
    for (let i = 0; i < count; i++) {
      const id = randomBytes(16).toString('base64url');
      const secret = randomBytes(32);
      this.#tickets.set(id, { peer, secret, expires, reverse });
      out.push({ id, key: secret.toString('base64url') });
    }
    this.#perPeer.set(peer, held + count);
    return out;
  }

  /** Forgets every ticket of a peer (it was revoked). */
  forget(peer: string): void {
    for (const [id, t] of this.#tickets) if (t.peer === peer) this.#drop(id, t);
  }

  /** Takes a live ticket out of the table: it admits one handshake, never two. */
  #redeem(id: string): Issued | undefined {
    const t = this.#tickets.get(id);
    if (!t) return undefined;
    this.#drop(id, t);
    return t.expires > Date.now() ? t : undefined;
  }

  #drop(id: string, t: Issued): void {
    this.#tickets.delete(id);
    const left = (this.#perPeer.get(t.peer) ?? 1) - 1;
    if (left <= 0) this.#perPeer.delete(t.peer);
    else this.#perPeer.set(t.peer, left);
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, t] of this.#tickets) if (t.expires <= now) this.#drop(id, t);
  }

  /**
   * Runs the TLS server end on a connection this node dialed out to a relay (spliced.ts): the
   * far member's ClientHello comes through the relay once both sides are there. Within
   * SPLICE_WAIT_MS plus the usual handshake time, or it is dropped.
   */
  acceptSpliced(raw: Socket): void {
    this.#handshake(raw, () => {}, SPLICE_WAIT_MS + DATA_HANDSHAKE_TIMEOUT_MS);
  }

  /**
   * A stranger's connection before its handshake or preamble: a slot among MAX_DATA_HANDSHAKES
   * (both listeners together), at most MAX_DATA_HANDSHAKES_PER_SOURCE from one source, and
   * DATA_HANDSHAKE_TIMEOUT_MS. Undefined (and the connection reset) when no slot is free;
   * otherwise the slot's release.
   */
  #admit(raw: Socket): (() => void) | undefined {
    raw.on('error', () => {});
    const source = sourceKey(raw.remoteAddress);
    const fromSource = this.#perSource.get(source) ?? 0;
    if (this.#pending.size >= MAX_DATA_HANDSHAKES || fromSource >= MAX_DATA_HANDSHAKES_PER_SOURCE) {
      raw.resetAndDestroy();
      return undefined;
    }
    this.#pending.add(raw);
    this.#perSource.set(source, fromSource + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      this.#pending.delete(raw);
      const left = (this.#perSource.get(source) ?? 1) - 1;
      if (left <= 0) this.#perSource.delete(source);
      else this.#perSource.set(source, left);
    };
    const timer = setTimeout(() => raw.resetAndDestroy(), DATA_HANDSHAKE_TIMEOUT_MS);
    raw.once('close', release);
    return release;
  }

  /**
   * The data port: TLS from the first byte, with nothing read in JavaScript before the TLS socket
   * takes the TCP socket over. Bytes read first and handed back (`unshift`) would be the first
   * thing in Node's TLS input buffer, which then stays a ring of small buffers: with 1500-byte
   * segments every read of that connection filled 1.5 or 16 KiB (4.6 times the reads, and about
   * twice the receiving agent's CPU per GB, bench/tunnel.ts --only nat), where a TLS socket over
   * an unread TCP socket reads up to 64 KiB. So splices have a port of their own.
   */
  #accept(raw: Socket): void {
    const release = this.#admit(raw);
    if (release) this.#handshake(raw, release, 0);
  }

  /**
   * The splice port: a preamble (wire.ts), read whole (fixed size) under the same slot and
   * deadline as a handshake; anything else is refused.
   */
  #acceptSplice(raw: Socket): void {
    const release = this.#admit(raw);
    if (!release) return;
    let got: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      got = got.length === 0 ? d : Buffer.concat([got, d]);
      if (got[0] !== SPLICE_MAGIC[0] || !this.#onSplice) return void raw.resetAndDestroy();
      if (got.length < PREAMBLE_BYTES) return;
      raw.off('data', onData);
      const ticket = parsePreamble(got.subarray(0, PREAMBLE_BYTES));
      release();
      if (!ticket || !this.#onSplice(ticket.id, ticket.secret, raw, got.subarray(PREAMBLE_BYTES)))
        raw.resetAndDestroy();
    };
    raw.on('data', onData);
  }

  /**
   * The TLS server end over `raw`: a ticket from the table keys it. `release` frees the
   * pre-handshake slot; `timeoutMs` (0: the accepting slot's own deadline runs) bounds it.
   */
  #handshake(raw: Socket, release: () => void, timeoutMs: number): void {
    raw.on('error', () => {});
    // The ticket this handshake redeemed. OpenSSL may ask again for the same identity within one
    // handshake (after a HelloRetryRequest), so the answer is kept for this connection.
    let redeemed: { id: string; ticket: Issued } | undefined;
    this.#context ??= serverSecureContext();
    const socket = new (tlsModule().TLSSocket)(raw, {
      isServer: true,
      highWaterMark: TLS_HIGH_WATER_BYTES,
      secureContext: this.#context,
      pskCallback: (_s: TLSSocket, id: string) => {
        if (redeemed) return redeemed.id === id ? redeemed.ticket.secret : null;
        const ticket = this.#redeem(id);
        if (!ticket) return null;
        redeemed = { id, ticket };
        return ticket.secret;
      },
    } as ConstructorParameters<typeof TLSSocket>[1]);
    socket.on('error', () => {});
    const timer = timeoutMs > 0 ? setTimeout(() => raw.resetAndDestroy(), timeoutMs) : undefined;
    const done = () => {
      clearTimeout(timer);
      release();
    };
    raw.once('close', done);
    socket.once('close', done);
    socket.once('secure', () => {
      done();
      if (!redeemed || socket.destroyed) return void socket.destroy();
      this.#onConnection({ peer: redeemed.ticket.peer, reverse: redeemed.ticket.reverse }, socket, raw);
    });
  }
}
