/**
 * The binary fast path of `plexus cp` (issue 16; docs/shell.md): an authorised `fs.read` or
 * `fs.write` asks for a one-shot channel, a loopback listener on an ephemeral port, exposed for
 * a short while as a tunnel service with an unguessable name (the composition root hands
 * `services()` to the tunnels' service directory as a provider). The command's signed reply
 * carries the name and a 32-byte secret to the operator only; the first 32 bytes on the
 * connection must be that secret, else it is reset, logged, and the transfer refused. One
 * connection only: the first one, right or wrong, unregisters the service and closes the
 * listener. The file's bytes then travel the tunnel data path instead of base64 JSON frames on
 * the signed-command stream; what they are is still decided by the sha256 the operator signs.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import type { Logger } from '../logging/index.ts';
import { TransferChannelError } from './errors.ts';

/** Bytes of the secret that opens a channel. */
export const CHANNEL_SECRET_BYTES = 32;
/** How long a channel waits for its connection. */
export const CHANNEL_TTL_MS = 30_000;
/** How long a connection may take to send the secret. */
const SECRET_TIMEOUT_MS = 5_000;

/** An open channel, as the operator learns it (signed reply) and as the action uses it. */
export interface Channel {
  /** The tunnel service name: `cp-` and 24 hex digits. */
  service: string;
  secret: Buffer;
  /** The connection that presented the secret, and what it sent after it. */
  accepted: Promise<{ socket: Socket; head: Buffer }>;
}

/** The channels open on this node. */
export class TransferChannels {
  readonly #open = new Map<string, number>();
  readonly #logger: Logger;
  readonly #ttlMs: number;

  constructor(logger: Logger, ttlMs = CHANNEL_TTL_MS) {
    this.#logger = logger;
    this.#ttlMs = ttlMs;
  }

  /** The channels as tunnel services (name, loopback port), for the service directory. */
  services(): { name: string; port: number }[] {
    return [...this.#open].map(([name, port]) => ({ name, port }));
  }

  /** Opens a channel for one transfer; `who` names the caller in the log of a refused attempt. */
  async open(signal: AbortSignal, who: { kid: string; command?: string }): Promise<Channel> {
    const service = `cp-${randomBytes(12).toString('hex')}`;
    const secret = randomBytes(CHANNEL_SECRET_BYTES);
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.#open.set(service, (server.address() as { port: number }).port);
    let timer: NodeJS.Timeout | undefined;
    const shut = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      this.#open.delete(service);
      server.close();
    };
    let fail: (err: Error) => void = () => {};
    const onAbort = () => {
      shut();
      fail(new TransferChannelError('TRANSFER_EXPIRED', 'the copy was cancelled before its connection'));
    };
    const accepted = new Promise<{ socket: Socket; head: Buffer }>((resolve, reject) => {
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
      server.once('connection', (socket) => {
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
      });
    });
    accepted.catch(() => {});
    return { service, secret, accepted };
  }
}

/** Reads the first bytes of `socket`; resolves with what follows the secret, or rejects with why. */
function readSecret(socket: Socket, secret: Buffer): Promise<Buffer> {
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
