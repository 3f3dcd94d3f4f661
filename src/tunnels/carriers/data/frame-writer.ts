/**
 * The sending side of a tunnel's data connection (splice.ts): local bytes go out as frames
 * (frames.ts) with one TLS write in flight at a time, and what is read meanwhile is gathered in
 * a few buffers of the tunnel's own, reused from one write to the next.
 *
 * Why: the chunks handed to `send` are often views into the shared read buffer
 * (socket-reader.ts), valid only during the call. A TLS socket encrypts a write at once when it
 * is idle, but it completes the write (and so stays busy) until a later turn of the event loop,
 * and libuv reads a busy source socket up to 32 times in one turn: every frame after the first
 * was copied into a fresh 64 KiB Buffer for the stream to queue, and the TLS socket copied the
 * queued frames once more into one buffer to encrypt them. A GB cost 16 000 new Buffers of the
 * sending agent, and V8 answered that much external memory with a full mark-compact every
 * ~30 MB: its marking threads and the copies were most of the sending agent's CPU
 * (bench/tunnel.ts, `perf`). Here the frames queued behind a write go into reused buffers, and
 * leave as one write (one SSL_write, one TCP write) when the write before them completes.
 *
 * Memory stays bounded: at most STAGE_BYTES wait here (the local socket is paused past
 * STAGE_PAUSE_BYTES) besides the write in flight, and the buffers are made only once a tunnel
 * sends faster than one write at a time, so a connection that carries a request and its answer
 * allocates none.
 */
import type { Socket } from 'node:net';
import { endFrames } from './frames.ts';

/** Length of a frame header (frames.ts). */
const HEADER_BYTES = 4;
/** The largest chunk a socket read gives (Node reads 64 KiB; socket-reader.ts likewise). */
const READ_BYTES = 64 * 1024;
/** One staging buffer: four frames of a full read, the payload of one 256 KiB TLS write. */
export const STAGE_BYTES = 4 * (HEADER_BYTES + READ_BYTES);
/** Buffers kept between writes: one staging while the other is written. */
const MAX_SPARES = 2;
/** Past this much waiting, the local socket is paused: one more full read still fits. */
const STAGE_PAUSE_BYTES = STAGE_BYTES - (HEADER_BYTES + READ_BYTES);

/** A staging buffer and how much of it is filled. */
interface Stage {
  buf: Buffer;
  used: number;
}

/** Writes one tunnel direction's frames into a data connection's TLS socket. */
export class FrameWriter {
  readonly #socket: Socket;
  /** Called when the local socket should stop (false) or may go on (true) reading. */
  readonly #flow: (go: boolean) => void;
  /** A write of ours in flight: nothing it holds may change until its callback. */
  #busy = false;
  /** Frames waiting for the write in flight: one buffer, or more for a chunk past a read. */
  #staged: Stage[] = [];
  #stagedBytes = 0;
  /** Staging buffers whose writes completed, kept for the next (at most MAX_SPARES). */
  #spares: Buffer[] = [];
  #paused = false;

  constructor(socket: Socket, flow: (go: boolean) => void) {
    this.#socket = socket;
    this.#flow = flow;
  }

  /** Sends `chunk` (valid only during this call) as frames. */
  send(chunk: Uint8Array): void {
    const s = this.#socket;
    if (s.destroyed || s.writableEnded || chunk.byteLength === 0) return;
    // Idle, and no staging buffer made yet (a request, an answer): the TLS socket encrypts at
    // once, from the chunk itself, when nothing else is queued or corked on it.
    const idle = !this.#busy && s.writableLength === 0 && s.writableCorked === 0;
    if (idle && this.#spares.length === 0 && chunk.byteLength <= READ_BYTES) {
      const header = Buffer.allocUnsafe(HEADER_BYTES);
      header.writeUInt32BE(chunk.byteLength, 0);
      this.#busy = true;
      s.cork();
      s.write(header);
      s.write(chunk, this.#written);
      s.uncork();
      return;
    }
    this.#stage(chunk);
    if (!this.#busy) this.#flush();
    if (this.#stagedBytes > STAGE_PAUSE_BYTES && !this.#paused) {
      this.#paused = true;
      this.#flow(false);
    }
  }

  /**
   * Ends the direction with the FIN frame (frames.ts, endFrames) behind every frame staged; with
   * `keepOpen` the socket stays open for the next tunnel.
   */
  end(keepOpen: boolean): void {
    // A staged buffer may go out while a write is in flight: the stream keeps them in order, and
    // neither buffer is reused before its own write completed.
    if (this.#stagedBytes > 0) this.#flush();
    endFrames(this.#socket, keepOpen);
  }

  /** Copies `chunk` into the staging buffers, as frames of at most a read's size. */
  #stage(chunk: Uint8Array): void {
    for (let at = 0; at < chunk.byteLength; at += READ_BYTES) {
      const part = chunk.subarray(at, Math.min(chunk.byteLength, at + READ_BYTES));
      const need = HEADER_BYTES + part.byteLength;
      let stage = this.#staged.at(-1);
      if (!stage || stage.used + need > stage.buf.byteLength) {
        stage = { buf: this.#spares.pop() ?? Buffer.allocUnsafeSlow(STAGE_BYTES), used: 0 };
        this.#staged.push(stage);
      }
      stage.buf.writeUInt32BE(part.byteLength, stage.used);
      stage.buf.set(part, stage.used + HEADER_BYTES);
      stage.used += need;
      this.#stagedBytes += need;
    }
  }

  /** Writes what is staged: one write (one SSL_write, one TCP write) for one buffer. */
  #flush(): void {
    const s = this.#socket;
    const out = this.#staged;
    this.#staged = [];
    this.#stagedBytes = 0;
    if (out.length === 0 || s.destroyed || s.writableEnded) return;
    this.#busy = true;
    const done = () => {
      // Written: the buffers are ours again.
      for (const o of out) if (this.#spares.length < MAX_SPARES) this.#spares.push(o.buf);
      this.#written();
    };
    s.cork();
    for (let i = 0; i < out.length; i++)
      s.write(out[i].buf.subarray(0, out[i].used), i === out.length - 1 ? done : undefined);
    s.uncork();
  }

  /** A write of ours completed: the next one takes what was staged meanwhile. */
  #written = (): void => {
    this.#busy = false;
    if (this.#stagedBytes > 0) this.#flush();
    if (this.#paused && this.#stagedBytes <= STAGE_PAUSE_BYTES) {
      this.#paused = false;
      this.#flow(true);
    }
  };
}
