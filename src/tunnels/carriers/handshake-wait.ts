/**
 * The waiting that both carriers' handshake readers share (carriers/stream/frames.ts reads a
 * frame from a libp2p stream, carriers/data/splice.ts a record from a data connection): the
 * reader settles the promise when its bytes are complete or bad, and the promise fails on its own
 * when the deadline passes or the connection closes first. Either way every listener is
 * detached, the reader's included, before it settles, and it settles once.
 */
import { TunnelProtocolError } from '../errors.ts';

/** What a reader gets to settle the handshake with. */
export interface HandshakeWait<T> {
  /** The handshake is complete. */
  done(value: T): void;
  /** The bytes are bad (or reading them failed). */
  fail(err: Error): void;
  /** The connection closed before the handshake was complete. */
  closed(): void;
  /** True once settled, also from inside `attach`. */
  readonly settled: boolean;
}

/**
 * Waits for a handshake: `attach` registers the reader's listeners and returns the function that
 * removes them. `signal` is the handshake's deadline.
 */
export function waitForHandshake<T>(
  signal: AbortSignal,
  attach: (wait: HandshakeWait<T>) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let detach: (() => void) | undefined;
    const end = () => {
      settled = true;
      signal.removeEventListener('abort', onAbort);
      detach?.();
    };
    const fail = (err: Error) => {
      if (settled) return;
      end();
      reject(err);
    };
    const onAbort = () => fail(TunnelProtocolError.handshakeTimeout());
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    const remove = attach({
      done(value) {
        if (settled) return;
        end();
        resolve(value);
      },
      fail,
      closed: () => fail(TunnelProtocolError.handshakeClosed()),
      get settled() {
        return settled;
      },
    });
    // Settled while attaching (bytes that came early held the whole handshake): detach now.
    if (settled) remove();
    else detach = remove;
  });
}
