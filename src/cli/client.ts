/**
 * Talks to the local agent over DATA/plexus.sock. Deliberately light: no libp2p, no SQLite, so
 * verbs that only ask the agent start in tens of milliseconds.
 */
import { createConnection } from 'node:net';
import type { ErrorBody } from '../core/errors.ts';
import type { Frame } from '../core/frames.ts';
import { MAX_LINE_BYTES } from '../core/frames.ts';
import { parseJsonLine, readLines } from '../core/ndjson.ts';
import { CliError } from './errors.ts';

/** Options for one call. */
export interface CallOptions {
  /** Called for every data frame. */
  onData?(data: unknown): void | Promise<void>;
  /** Frames to send after the request (stdin, upload chunks). */
  input?: AsyncIterable<unknown>;
  /** Aborts the call (closes the socket). */
  signal?: AbortSignal;
  /**
   * An interactive session's input (issue 16): each frame is signed on its own as it comes and
   * sent at once, with backpressure. The iterator should end only once the call is over.
   */
  live?: AsyncIterable<Record<string, unknown>>;
}

/** The agent answered with an error frame. */
export class RemoteError extends CliError {
  override name = 'RemoteError';
  readonly body: ErrorBody;
  constructor(body: ErrorBody) {
    super(body.message, body.kind === 'invalid' ? 1 : 1);
    this.body = body;
  }
}

/** Something that can run actions: the local socket now, the HTTP API for remote operators. */
export interface AgentClient {
  call(action: string, args?: Record<string, unknown>, opts?: CallOptions): Promise<unknown>;
}

/** A client for the agent owning `socketPath`. */
export function socketClient(socketPath: string): AgentClient {
  return {
    call(action, args = {}, opts = {}) {
      return new Promise((resolve, reject) => {
        const socket = createConnection(socketPath);
        let settled = false;
        const fail = (err: Error) => {
          if (settled) return;
          settled = true;
          socket.destroy();
          reject(err);
        };
        opts.signal?.addEventListener('abort', () => fail(new CliError('interrupted')), { once: true });
        socket.once('error', (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
            fail(
              new CliError(
                `no agent is running for this data dir (${socketPath}); start it with 'plexus agent'`,
              ),
            );
          } else if (err.code === 'EACCES') {
            fail(new CliError(`permission denied on ${socketPath}; run as the user that runs the agent`));
          } else {
            fail(new CliError(`cannot reach the agent: ${err.message}`));
          }
        });
        socket.once('connect', async () => {
          socket.write(`${JSON.stringify({ action, args })}\n`);
          if (opts.input) {
            (async () => {
              for await (const frame of opts.input!) {
                if (socket.destroyed) return;
                if (!socket.write(`${JSON.stringify(frame)}\n`)) {
                  await new Promise((r) => socket.once('drain', r));
                }
              }
            })().catch(() => {});
          }
          try {
            for await (const line of readLines(socket, MAX_LINE_BYTES * 16)) {
              const frame = parseJsonLine(line) as Frame;
              if (frame.type === 'data') await opts.onData?.(frame.data);
              else if (frame.type === 'result') {
                settled = true;
                socket.destroy();
                resolve(frame.result);
                return;
              } else if (frame.type === 'error') {
                return fail(new RemoteError(frame.error));
              }
            }
            fail(new CliError('the agent closed the connection without an answer; see plexus logs --system'));
          } catch (err) {
            fail(err as Error);
          }
        });
      });
    },
  };
}
