/**
 * The server end of tunnel data connections (docs/tunnels.md, data connections): a TCP
 * listener, and the tickets
 * that admit a connection to it. A member asks for tickets over the Noise-encrypted mesh
 * stream; each is a random 16-byte id and a 32-byte secret, good for one connection within
 * TICKET_TTL_MS. A connection must open with `MAGIC || id`; anything else (a port scan, a
 * stranger, a replayed or expired id) is reset after at most a few seconds and 24 bytes, and
 * learns nothing: every byte after the preamble is an AES-GCM record keyed by the secret.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../../logging/index.ts';
import {
  DATA_PREAMBLE_TIMEOUT_MS,
  MAX_DATA_PREAMBLES,
  MAX_TICKETS_PER_PEER,
  MAX_TICKETS_TOTAL,
  TICKET_TTL_MS,
} from '../../constants.ts';
import { TunnelLimitError } from '../../errors.ts';
import { DATA_MAGIC, DATA_PREAMBLE_BYTES, type DataTicket } from './tickets.ts';

/** A redeemed ticket: who it was issued to, and its secret. */
export interface RedeemedTicket {
  peer: string;
  secret: Buffer;
}

interface Issued {
  peer: string;
  secret: Buffer;
  expires: number;
}

/** Options of the listener. */
export interface DataListenerInit {
  host: string;
  port: number;
}

/**
 * Where the data listener binds, from config `tunnels.dataListen`: `auto` takes the host of the
 * first IP mesh listen address with any free port; `off` (or no IP listen address) gives none.
 */
export function dataListenOf(setting: string, meshListen: string[]): DataListenerInit | undefined {
  if (setting === 'off') return undefined;
  if (setting !== 'auto') {
    const at = setting.lastIndexOf(':');
    return { host: setting.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(setting.slice(at + 1)) };
  }
  for (const addr of meshListen) {
    const m = /^\/ip([46])\/([^/]+)\/tcp\//.exec(addr);
    if (m) return { host: m[2], port: 0 };
  }
  return undefined;
}

/** The data listener and its tickets. */
export class DataListener {
  readonly #init: DataListenerInit;
  readonly #logger: Logger;
  readonly #onConnection: (ticket: RedeemedTicket, socket: Socket, rest: Buffer) => void;
  readonly #tickets = new Map<string, Issued>();
  readonly #perPeer = new Map<string, number>();
  readonly #pending = new Set<Socket>();
  #server: Server | undefined;
  #sweep: NodeJS.Timeout | undefined;

  constructor(
    init: DataListenerInit,
    components: {
      logger: Logger;
      onConnection: (ticket: RedeemedTicket, socket: Socket, rest: Buffer) => void;
    },
  ) {
    this.#init = init;
    this.#logger = components.logger;
    this.#onConnection = components.onConnection;
  }

  /** The bound port (after start). */
  get port(): number {
    return (this.#server?.address() as { port: number } | null)?.port ?? 0;
  }

  /** The host clients should dial, when it is a specific address (not a wildcard). */
  get host(): string | undefined {
    const h = this.#init.host;
    return h === '0.0.0.0' || h === '::' ? undefined : h;
  }

  /** Binds the listener. */
  async start(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.#accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.#init.host, port: this.#init.port, backlog: 1024 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#logger.warn({ err }, 'tunnel data listener error'));
    this.#server = server;
    this.#sweep = setInterval(() => this.#expire(), TICKET_TTL_MS);
    this.#sweep.unref();
    this.#logger.info({ listen: `${this.#init.host}:${this.port}` }, 'tunnel data listener ready');
  }

  /** Closes the listener, drops unredeemed tickets and half-open preambles. */
  stop(): void {
    clearInterval(this.#sweep);
    this.#tickets.clear();
    this.#perPeer.clear();
    for (const s of this.#pending) s.destroy();
    // Stop listening now; redeemed connections belong to their tunnels, which close them
    // (close()'s callback would wait for every one of them).
    this.#server?.close();
    this.#server = undefined;
  }

  /** Issues `count` tickets to a member; throws TunnelLimitError past the limits. */
  issue(peer: string, count: number): DataTicket[] {
    this.#expire();
    const held = this.#perPeer.get(peer) ?? 0;
    if (held + count > MAX_TICKETS_PER_PEER || this.#tickets.size + count > MAX_TICKETS_TOTAL)
      throw new TunnelLimitError('too many unused data tickets');
    const out: DataTicket[] = [];
    const expires = Date.now() + TICKET_TTL_MS;
    for (let i = 0; i < count; i++) {
      const id = randomBytes(16);
      const secret = randomBytes(32);
      this.#tickets.set(id.toString('base64url'), { peer, secret, expires });
      out.push({ id: id.toString('base64url'), key: secret.toString('base64url') });
    }
    this.#perPeer.set(peer, held + count);
    return out;
  }

  /** Forgets every ticket of a peer (it was revoked). */
  forget(peer: string): void {
    for (const [id, t] of this.#tickets) if (t.peer === peer) this.#drop(id, t);
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

  #accept(socket: Socket): void {
    socket.on('error', () => {});
    if (this.#pending.size >= MAX_DATA_PREAMBLES) {
      socket.destroy();
      return;
    }
    this.#pending.add(socket);
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => refuse(), DATA_PREAMBLE_TIMEOUT_MS);
    const cleanup = () => {
      clearTimeout(timer);
      this.#pending.delete(socket);
      socket.off('data', onData);
      socket.off('close', cleanup);
    };
    const refuse = () => {
      cleanup();
      if (!socket.destroyed) socket.resetAndDestroy();
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.byteLength;
      if (got < DATA_PREAMBLE_BYTES) return;
      socket.pause();
      const all = Buffer.concat(chunks, got);
      if (!all.subarray(0, DATA_MAGIC.byteLength).equals(DATA_MAGIC)) return refuse();
      const id = all.subarray(DATA_MAGIC.byteLength, DATA_PREAMBLE_BYTES).toString('base64url');
      const t = this.#tickets.get(id);
      if (!t || t.expires <= Date.now()) return refuse();
      this.#drop(id, t);
      cleanup();
      this.#onConnection({ peer: t.peer, secret: t.secret }, socket, all.subarray(DATA_PREAMBLE_BYTES));
    };
    socket.on('data', onData);
    socket.once('close', cleanup);
  }
}
