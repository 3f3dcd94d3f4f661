/**
 * The binary fast path of `plexus cp` (issue 16; docs/shell.md): an authorised `fs.read` or
 * `fs.write` asks for a one-shot channel, a tunnel service with an unguessable name served
 * in-process for a short while (the composition root hands `target()` to the tunnels' service
 * directory): the tunnel's bytes reach the channel's handler as a stream in this process, with
 * no loopback socket in between (src/tunnels/in-process.ts). The command's signed reply carries
 * the name and a 32-byte secret to the operator only; the first 32 bytes on the connection must
 * be that secret, else it is reset, logged, and the transfer refused. One connection only: the
 * first one, right or wrong, unregisters the service. The file's bytes then travel the tunnel
 * data path instead of base64 JSON frames on the signed-command stream; what they are is still
 * decided by the sha256 the operator signs.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logging/index.ts';
import { TransferChannelError } from './errors.ts';

/** Bytes of the secret that opens a channel. */
export const CHANNEL_SECRET_BYTES = 32;
/** How long a channel waits for its connection. */
export const CHANNEL_TTL_MS = 30_000;
/** How long a connection may take to send the secret. */
const SECRET_TIMEOUT_MS = 5_000;

/**
 * A tunnel's end as the tunnels hand it over (an in-process connection end): a stream that
 * behaves as a TCP socket, reset included.
 */
export type ChannelSocket = Duplex & {
  resetAndDestroy(): unknown;
  /**
   * Takes the bytes as they are written, each with a `done` that completes the writer's write
   * (src/tunnels/in-process.ts): the tunnel then reuses its buffers as it does for a socket.
   */
  consume(consumer: (chunk: Buffer, done: () => void) => void): void;
  /** Writes bytes valid only during the call: passed on at once when the tunnel takes them so, else copied. */
  writeTransient(chunk: Uint8Array): boolean;
};

/** An open channel as the tunnels' service directory sees it: a name and who takes its connection. */
export interface ChannelTarget {
  name: string;
  accept(socket: ChannelSocket): void;
}

/** An open channel, as the operator learns it (signed reply) and as the action uses it. */
export interface Channel {
  /** The tunnel service name: `cp-` and 24 hex digits. */
  service: string;
  secret: Buffer;
  /** The connection that presented the secret, and what it sent after it. */
  accepted: Promise<{ socket: ChannelSocket; head: Buffer }>;
}

/** The channels open on this node. */
export class TransferChannels {
  readonly #open = new Map<string, ChannelTarget>();
  readonly #logger: Logger;
  readonly #ttlMs: number;

  constructor(logger: Logger, ttlMs = CHANNEL_TTL_MS) {
    this.#logger = logger;
    this.#ttlMs = ttlMs;
  }

  /** The open channel named `name`, for the service directory; undefined once used or expired. */
  target(name: string): ChannelTarget | undefined {
    return this.#open.get(name);
  }

  /** How many channels wait for their connection. */
  get size(): number {
    return this.#open.size;
  }

  /** Opens a channel for one transfer; `who` names the caller in the log of a refused attempt. */
  async open(signal: AbortSignal, who: { kid: string; command?: string }): Promise<Channel> {
    const service = `cp-${randomBytes(12).toString('hex')}`;
    const secret = randomBytes(CHANNEL_SECRET_BYTES);
    let timer: NodeJS.Timeout | undefined;
    const shut = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      this.#open.delete(service);
    };
    let fail: (err: Error) => void = () => {};
    const onAbort = () => {
      shut();
      fail(new TransferChannelError('TRANSFER_EXPIRED', 'the copy was cancelled before its connection'));
    };
    const accepted = new Promise<{ socket: ChannelSocket; head: Buffer }>((resolve, reject) => {
      fail = reject;
      timer = setTimeout(() => {
        shut();
        reject(
          new TransferChannelError(
            'TRANSFER_EXPIRED',
            `no transfer connection within ${this.#ttlMs / 1000} s; is the local agent's SOCKS proxy reachable?`,
          ),
        );
      }, this.#ttlMs);
      signal.addEventListener('abort', onAbort, { once: true });
      const accept = (socket: ChannelSocket) => {
        shut();
        readSecret(socket, secret).then(
          (head) => resolve({ socket, head }),
          (why: string) => {
            socket.resetAndDestroy();
            this.#logger.warn(
              { service, kid: who.kid, command: who.command, why },
              'transfer connection refused',
            );
            reject(
              new TransferChannelError(
                'TRANSFER_REFUSED',
                `the transfer connection was refused (${why}); nothing was written`,
              ),
            );
          },
        );
      };
      this.#open.set(service, { name: service, accept });
    });
    accepted.catch(() => {});
    return { service, secret, accepted };
  }
}

/** Reads the first bytes of `socket`; resolves with what follows the secret, or rejects with why. */
function readSecret(socket: ChannelSocket, secret: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let over = false;
    const done = (err?: string) => {
      if (over) return;
      over = true;
      clearTimeout(t);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (err) reject(err);
      else resolve(buf.subarray(secret.length));
    };
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length < secret.length) return;
      done(timingSafeEqual(buf.subarray(0, secret.length), secret) ? undefined : 'wrong secret');
    };
    const onEnd = () => done('closed before the secret');
    const t = setTimeout(() => done('no secret in time'), SECRET_TIMEOUT_MS);
    socket.on('error', () => done('connection error'));
    socket.on('data', onData);
    socket.once('end', onEnd);
  });
}
