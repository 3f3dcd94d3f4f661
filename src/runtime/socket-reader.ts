/**
 * One way to take a socket's incoming bytes, whether it reads into a shared buffer (`onread`)
 * or emits `data` events. Node allocates a fresh 64 KiB Buffer for every read of a plain socket;
 * at tunnel speeds that is most of the garbage the agent makes. A socket we connect ourselves
 * can read into one buffer shared by every such socket instead: no allocation per read. The
 * catch is that a chunk is only valid during the handler call, so handlers must consume it at
 * once (encrypt or decrypt it, which copies); bytes that arrive while no handler is set are
 * copied and kept for the next one, up to MAX_KEPT_BYTES.
 * (Accepted sockets and TLS sockets cannot take `onread`: userBufferReader gives them one.)
 * Used by the tunnels' data carrier (src/tunnels/carriers/data/) and by the copy channel of
 * `plexus cp` for the pipe of the `cat` it reads (src/shell/file-direct.ts): it is about Node's
 * streams, not about either, so it lives here.
 */
import { Socket } from 'node:net';
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

/**
 * Bytes a reader keeps while no handler is set, at most. Legitimately that is what comes between
 * two owners of a socket within one turn of the event loop (a reused data connection between two
 * tunnels: the next header and first bytes), a read or two; past this the sender is sending to
 * nobody, and the socket is destroyed with KEPT_OVERFLOW rather than buffered without limit.
 */
export const MAX_KEPT_BYTES = 1024 * 1024;

/** The error a socket is destroyed with when more than MAX_KEPT_BYTES came with no reader. */
export function keptOverflow(): Error {
  return Object.assign(
    new Error(`more than ${MAX_KEPT_BYTES / 1024} KiB arrived while nothing was reading this connection`),
    { code: 'KEPT_OVERFLOW' },
  );
}

/** Handler of incoming chunks; a chunk is only valid during the call. */
export type ChunkHandler = (chunk: Buffer) => void;

/** Where a socket's incoming bytes go. */
export interface SocketReader {
  /** Sets (or with undefined, clears) the handler; bytes kept meanwhile are delivered first. */
  set(handler: ChunkHandler | undefined): void;
}

/** Chunks that came while no handler was set, kept for the next one: MAX_KEPT_BYTES at most. */
class KeptChunks {
  #chunks: Buffer[] = [];
  #bytes = 0;

  /** Keeps `chunk` (a Buffer of the caller's own); false, keeping nothing, past MAX_KEPT_BYTES. */
  keep(chunk: Buffer): boolean {
    if (this.#bytes + chunk.byteLength > MAX_KEPT_BYTES) return false;
    this.#chunks.push(chunk);
    this.#bytes += chunk.byteLength;
    return true;
  }

  /** Hands the kept chunks, oldest first, to the handler `current` gives, for as long as there is one. */
  drain(current: () => ChunkHandler | undefined): void {
    for (let handler = current(); handler && this.#chunks.length > 0; handler = current()) {
      const chunk = this.#chunks.shift() as Buffer;
      this.#bytes -= chunk.byteLength;
      handler(chunk);
    }
  }
}

/** A reader for a socket to be created with `onread: reader.onread`. */
export class SharedBufferReader implements SocketReader {
  #handler: ChunkHandler | undefined;
  readonly #kept = new KeptChunks();
  /**
   * Called (once) when more than MAX_KEPT_BYTES came with no handler: the socket's owner destroys
   * it with the error. The socket has stopped reading by then, so nothing more is kept.
   */
  onOverflow: ((err: Error) => void) | undefined;

  /** `buffer`: the shared buffer to read into (the one of plain sockets by default). */
  constructor(buffer: Buffer<ArrayBuffer> = shared) {
    this.onread.buffer = buffer;
  }

  /** Pass as the `onread` option of `net.connect`. */
  readonly onread = {
    buffer: shared,
    // Returning false stops the socket's reads: only past MAX_KEPT_BYTES, with its owner told to
    // destroy it; flow control uses pause() and resume() instead.
    callback: (n: number, buf: Uint8Array): boolean => {
      const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
      if (this.#handler) {
        this.#handler(chunk);
        return true;
      }
      if (this.#kept.keep(Buffer.from(chunk))) return true;
      // Stops the socket's reads (Node's onread contract), then its owner destroys it.
      this.onOverflow?.(keptOverflow());
      this.onOverflow = undefined;
      return false;
    },
  };

  set(handler: ChunkHandler | undefined): void {
    this.#handler = handler;
    this.#kept.drain(() => this.#handler);
  }
}

/** A reader over a plain socket's `data` events (kept bytes bounded as SharedBufferReader's). */
export function dataEventReader(socket: Readable): SocketReader {
  let current: ChunkHandler | undefined;
  const kept = new KeptChunks();
  const keep = (chunk: Buffer) => {
    if (!kept.keep(chunk)) socket.destroy(keptOverflow());
  };
  socket.on('data', keep);
  return {
    set(handler) {
      socket.off('data', current ?? keep);
      current = handler;
      kept.drain(() => handler);
      socket.on('data', handler ?? keep);
      if (!handler) current = undefined;
    },
  };
}

/** The slots net.Socket keeps its `onread` option in, found on a probe socket (see userBufferReader). */
interface OnreadSlots {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}
let onreadSlots: OnreadSlots | null | undefined;

function findOnreadSlots(): OnreadSlots | null {
  const buffer = Buffer.alloc(1);
  const callback = () => true;
  const probe = new Socket({ onread: { buffer, callback } });
  const slots = probe as unknown as Record<symbol, unknown>;
  const symbols = Object.getOwnPropertySymbols(probe);
  const found = {
    buffer: symbols.find((s) => slots[s] === buffer),
    callback: symbols.find((s) => slots[s] === callback),
    generator: symbols.find((s) => s.description === 'kBufferGen' && slots[s] === null),
  };
  probe.destroy();
  return found.buffer && found.callback && found.generator ? (found as OnreadSlots) : null;
}

/**
 * Where TLS sockets decrypt into: a record is at most 16 KiB, and a buffer of their own keeps
 * them apart from the plain sockets' reads. Made at the first data connection.
 */
let tlsShared: Buffer<ArrayBuffer> | undefined;

/**
 * A reader for a socket we did not create with `onread` (an accepted socket, a data connection's
 * TLS socket) that reads into a shared buffer all the same: without it, Node allocates a Buffer
 * for each read (64 KiB) or each TLS record (16 KiB), and a V8 mark-compact followed every ~30 MB
 * of them (the receiving agent's largest cost, bench/tunnel.ts). node:net takes `onread` only when
 * it creates a socket, and node:tls only for a socket it connects itself (ours wrap a TCP socket
 * we keep, to reset it and to send a relay's preamble first), so this does what the option does
 * there: the socket's slots for it (found on a probe socket made with the option) and the stream
 * handle's user buffer. On a Node that lays these out differently the socket keeps its `data`
 * events, which test/unit/tunnels/carriers/data/socket-reader.test.ts notices. Bytes the socket
 * delivered before the switch go first.
 */
export function userBufferReader(socket: Readable, tls = false): SocketReader & { shared: boolean } {
  const events = dataEventReader(socket);
  // Not a socket (an in-process end, src/tunnels/in-process.ts): its Buffers are its own.
  if (!(socket instanceof Socket)) return Object.assign(events, { shared: false });
  const handle = (socket as unknown as { _handle?: { useUserBuffer?(buf: Uint8Array): void } })._handle;
  if (onreadSlots === undefined) onreadSlots = findOnreadSlots();
  if (!onreadSlots || typeof handle?.useUserBuffer !== 'function')
    return Object.assign(events, { shared: false });
  if (tls) tlsShared ??= Buffer.allocUnsafe(16 * 1024);
  const reader = new SharedBufferReader(tls ? tlsShared : shared);
  reader.onOverflow = (err) => socket.destroy(err);
  const slots = socket as unknown as Record<symbol, unknown>;
  slots[onreadSlots.buffer] = reader.onread.buffer;
  slots[onreadSlots.callback] = reader.onread.callback;
  slots[onreadSlots.generator] = null;
  handle.useUserBuffer(reader.onread.buffer);
  return {
    shared: true,
    set(handler) {
      events.set(handler);
      reader.set(handler);
    },
  };
}
