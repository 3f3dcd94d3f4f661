/**
 * In-process services: a tunnel to a service the agent serves itself (the copy channels of
 * `plexus cp`, src/shell/transfer-channel.ts) is handed to its handler as one end of an
 * in-memory connection, instead of through a loopback TCP socket the handler would listen on.
 * That hop cost the target agent a write and a read syscall, two kernel copies and a fresh
 * 64 KiB Buffer per read for every byte of a copy (docs/shell.md, Measured). The pair behaves
 * like a TCP connection on both ends, so the carriers splice it as they splice a socket:
 * - bytes written on one end are read on the other: the same Buffers, no copy;
 * - backpressure: a write is held (writableLength grows, 'drain' comes later) until the other
 *   end reads its buffer below the mark;
 * - half-close: end() on one end is 'end' on the other; the other direction keeps flowing;
 * - destroy() is a TCP close: the other end reads its end; bytes left unread on the closed end,
 *   or written to it afterwards, reset the other end (ECONNRESET, EPIPE), as the kernel would;
 * - resetAndDestroy() (or destroy with an error) resets the other end.
 * A reader that writes what it reads on to somewhere else (the copy channel into `cat`'s pipe)
 * may instead take the bytes with `consume`: each chunk comes with a `done` to call once it is
 * done with the chunk, and the writer's write completes only then, so a writer that reuses its
 * buffers once a write completed (carriers/data/staged-writer.ts) may do so here as on a socket.
 * A reader that consumes synchronously (the data carrier's splice: it encrypts or copies each
 * chunk at once) says so, and then `writeTransient` may hand it bytes valid only during the call
 * (a shared read buffer, src/runtime/socket-reader.ts) without a copy. While such a reader is
 * paused, what is written waits (and the writer with it) until it resumes.
 */
import { Duplex } from 'node:stream';
import type { ChunkHandler, SocketReader } from '../runtime/socket-reader.ts';

/** Takes a chunk written to an end; `done` (once the chunk is no longer needed) completes the write. */
export type ChunkConsumer = (chunk: Buffer, done: () => void) => void;

/** A service served inside the agent: `accept` takes each tunnel to it (and may throw to refuse it). */
export interface InProcessTarget {
  name: string;
  accept(end: InProcessEnd): void;
}

/** What a tunnel's splice needs of its local end: a TCP socket or an InProcessEnd. */
export type LocalSocket = Duplex & {
  resetAndDestroy(): unknown;
  setNoDelay(noDelay?: boolean): unknown;
};

/** Where a tunnel goes on this node: an exposed local port, or a service served in-process. */
export type LocalTarget = number | InProcessTarget;

/**
 * Bytes one end takes before the writer is held: at least one of the data carrier's gathered
 * writes (splice.ts, 256 KiB), so that a batch is taken whole.
 */
const READ_HIGH_WATER_BYTES = 256 * 1024;

function socketError(code: 'ECONNRESET' | 'EPIPE', message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** One end of an in-memory connection (see the module comment); made in pairs by `pair()`. */
export class InProcessEnd extends Duplex {
  #peer: InProcessEnd | undefined;
  /** The peer's write waiting for this end to read (its callback). */
  #held: ((err?: Error | null) => void) | undefined;
  /** This end's end-of-stream was handed to the peer (once only). */
  #endSent = false;
  #reset = false;
  /** Takes what the peer writes, instead of this end's readable side (see `consume`). */
  #consumer: ChunkConsumer | undefined;
  /** The consumer is done with each chunk before it returns. */
  #consumesAtOnce = false;
  /** A chunk written while this end was paused, for its consumer once it resumes. */
  #pending: { chunk: Buffer; done: (err?: Error | null) => void } | undefined;

  private constructor() {
    // The writable mark matches: a 64 KiB write taken at once does not say 'wait for drain'.
    super({
      allowHalfOpen: true,
      readableHighWaterMark: READ_HIGH_WATER_BYTES,
      writableHighWaterMark: READ_HIGH_WATER_BYTES,
    });
  }

  /** Two connected ends: what one writes, the other reads. */
  static pair(): [InProcessEnd, InProcessEnd] {
    const a = new InProcessEnd();
    const b = new InProcessEnd();
    a.#peer = b;
    b.#peer = a;
    return [a, b];
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    const peer = this.#peer as InProcessEnd;
    if (peer.destroyed) callback(socketError('EPIPE', 'the other end is closed'));
    else if (peer.#consumer && peer.isPaused()) peer.#pending = { chunk, done: callback };
    else if (peer.#consumer) peer.#consumer(chunk, () => callback());
    else if (peer.push(chunk)) callback();
    else peer.#held = callback;
  }

  override _read(): void {
    const held = this.#held;
    this.#held = undefined;
    held?.();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#sendEnd();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const peer = this.#peer as InProcessEnd;
    const pending = this.#pending;
    this.#pending = undefined;
    const held = this.#held ?? pending?.done;
    this.#held = undefined;
    const unread = held !== undefined || this.readableLength > 0;
    if (!peer.destroyed) {
      if (err || this.#reset || unread) peer.destroy(socketError('ECONNRESET', 'the connection was reset'));
      else this.#sendEnd();
    }
    held?.(socketError('ECONNRESET', 'the connection was reset'));
    callback(err);
  }

  /**
   * From now on, hands what the peer writes to `consumer` instead of this end's readable side;
   * the peer's write completes when the consumer calls `done`, which is how it holds the writer
   * back. What was read into this end before comes first (those chunks the writer kept no claim
   * on: their writes completed with push). The end of the stream is still this end's 'end'
   * (resume() it to see that).
   */
  consume(consumer: ChunkConsumer, opts: { atOnce?: boolean } = {}): void {
    this.#consumer = consumer;
    this.#consumesAtOnce = opts.atOnce === true;
    for (let chunk = this.read(); chunk !== null; chunk = this.read()) consumer(chunk, () => {});
    const held = this.#held;
    this.#held = undefined;
    held?.();
  }

  /** Resumes reading; a consumer then gets what was written while this end was paused. */
  override resume(): this {
    super.resume();
    const pending = this.#pending;
    if (pending && this.#consumer) {
      this.#pending = undefined;
      this.#consumer(pending.chunk, pending.done);
    }
    return this;
  }

  /**
   * Writes bytes valid only during this call (a shared read buffer): handed over at once to a
   * reader that consumes them before it returns (`consume` with `atOnce`), else copied first.
   * Returns what write() returns.
   */
  writeTransient(chunk: Uint8Array): boolean {
    const peer = this.#peer;
    const atOnce =
      peer !== undefined &&
      peer.#consumer !== undefined &&
      peer.#consumesAtOnce &&
      !peer.isPaused() &&
      this.writableLength === 0 &&
      this.writableCorked === 0;
    return this.write(atOnce ? chunk : Buffer.from(chunk));
  }

  /** Whether the peer takes written chunks with `consume`, so a completed write is done with them. */
  get peerConsumes(): boolean {
    const peer = this.#peer;
    return peer !== undefined && peer.#consumer !== undefined;
  }

  /** Closes this end and resets the other (a TCP reset); this end emits no error. */
  resetAndDestroy(): this {
    this.#reset = true;
    return this.destroy();
  }

  /** Nothing to do in memory; here so the carriers treat this end as a socket. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  #sendEnd(): void {
    const peer = this.#peer as InProcessEnd;
    if (this.#endSent || peer.destroyed) return;
    this.#endSent = true;
    peer.push(null);
  }
}

/**
 * A reader of an in-process end for a handler that is done with each chunk when it returns (the
 * data carrier's splice encrypts or copies it at once): the end's writer may then hand over bytes
 * valid only during the call (`writeTransient`). What comes while no handler is set is kept.
 */
export function consumingReader(end: InProcessEnd): SocketReader {
  let handler: ChunkHandler | undefined;
  const kept: Buffer[] = [];
  end.consume(
    (chunk, done) => {
      if (handler) handler(chunk);
      else kept.push(Buffer.from(chunk));
      done();
    },
    { atOnce: true },
  );
  return {
    set(h) {
      handler = h;
      while (handler && kept.length > 0) handler(kept.shift() as Buffer);
    },
  };
}

/** Opens an in-memory connection to `target`: hands it one end and returns the other. */
export function connectInProcess(target: InProcessTarget): InProcessEnd {
  const [ours, theirs] = InProcessEnd.pair();
  target.accept(theirs);
  return ours;
}
