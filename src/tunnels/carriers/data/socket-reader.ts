/**
 * One way to take a socket's incoming bytes, whether it reads into a shared buffer (`onread`)
 * or emits `data` events. Node allocates a fresh 64 KiB Buffer for every read of a plain socket;
 * at tunnel speeds that is most of the garbage the agent makes. A socket we connect ourselves
 * can read into one buffer shared by every such socket instead: no allocation per read. The
 * catch is that a chunk is only valid during the handler call, so handlers must consume it at
 * once (encrypt or decrypt it, which copies); bytes that arrive while no handler is set are
 * copied and kept for the next one.
 * (Accepted sockets cannot take `onread`: net.Server has no such option.)
 */
import type { Readable } from 'node:stream';

/**
 * Read size for `onread` sockets. Not larger: a 64 KiB read, its decrypted copy and the write
 * that follows stay in the CPU's cache; with 256 KiB reads the receiving agent spent ~50 % more
 * CPU per GB (bench/tunnel.ts, 0.75 vs 1.15 s/GB) for the same bytes.
 */
const SHARED_READ_BYTES = 64 * 1024;
// Safe to share: the event loop runs one socket's read callback to completion before it reads
// the next socket into the buffer.
const shared = Buffer.allocUnsafe(SHARED_READ_BYTES);

/** Handler of incoming chunks; a chunk is only valid during the call. */
export type ChunkHandler = (chunk: Buffer) => void;

/** Where a socket's incoming bytes go. */
export interface SocketReader {
  /** Sets (or with undefined, clears) the handler; bytes kept meanwhile are delivered first. */
  set(handler: ChunkHandler | undefined): void;
}

/** A reader for a socket to be created with `onread: reader.onread`. */
export class SharedBufferReader implements SocketReader {
  #handler: ChunkHandler | undefined;
  #kept: Buffer[] = [];
  /** Pass as the `onread` option of `net.connect`. */
  readonly onread = {
    buffer: shared,
    // Returning false would pause the socket; flow control uses pause() and resume() instead.
    callback: (n: number, buf: Uint8Array): boolean => {
      const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
      if (this.#handler) this.#handler(chunk);
      else this.#kept.push(Buffer.from(chunk));
      return true;
    },
  };

  set(handler: ChunkHandler | undefined): void {
    this.#handler = handler;
    while (this.#handler && this.#kept.length > 0) {
      const chunk = this.#kept.shift();
      if (chunk) this.#handler(chunk);
    }
  }
}

/** A reader over a plain socket's `data` events. */
export function dataEventReader(socket: Readable): SocketReader {
  let current: ChunkHandler | undefined;
  const kept: Buffer[] = [];
  const keep = (chunk: Buffer) => kept.push(chunk);
  socket.on('data', keep);
  return {
    set(handler) {
      socket.off('data', current ?? keep);
      current = handler;
      while (handler && kept.length > 0) {
        const chunk = kept.shift();
        if (chunk) handler(chunk);
      }
      socket.on('data', handler ?? keep);
      if (!handler) current = undefined;
    },
  };
}
