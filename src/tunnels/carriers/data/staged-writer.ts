/**
 * Writes into a socket from a few reused buffers, one write in flight at a time, for the two
 * directions of a tunnel's data connection (splice.ts): local bytes going out as frames into TLS
 * (frame-writer.ts), and decrypted bytes going to the local socket.
 *
 * Why: the bytes handed over are views into a shared read buffer (src/runtime/socket-reader.ts), valid only
 * during the call, and a write holds on to what it is given until it completes, a turn of the
 * event loop later at the soonest. Copied into a fresh Buffer per chunk instead, a GB cost the
 * agent 16 000 (64 KiB reads) to 64 000 (16 KiB TLS records) new Buffers, and V8 answered that
 * much external memory with a full mark-compact every ~30 MB: its marking threads and the
 * copies were most of a tunnel's CPU (bench/tunnel.ts, `perf`). Here what comes while a write is
 * in flight is copied into a staging buffer, and leaves as one write when that write completes;
 * then the written buffer stages the next.
 *
 * Memory stays bounded: about `stageBytes` wait besides the write in flight (the feeding socket
 * is paused past `pauseBytes`), in two buffers per busy direction, made only once bytes come
 * while a write is in flight; a direction's first is small (FIRST_STAGE_BYTES), and a full-size
 * one is made only when more than that comes during one write.
 */
import type { Writable } from 'node:stream';

/** Buffers kept between writes: one staging while the other is written. */
const MAX_SPARES = 2;
/**
 * A direction's first staging buffer: a tunnel that carries a request and its answer stages a
 * few small pieces at most, and each of a thousand such tunnels must not hold a full buffer.
 */
const FIRST_STAGE_BYTES = 16 * 1024;

/** A staging buffer and how much of it is filled. */
interface Stage {
  buf: Buffer;
  used: number;
}

/** One direction's writes into `socket`, staged in reused buffers. */
export class StagedWriter {
  protected readonly socket: Writable;
  /** Called when the feeding socket should stop (false) or may go on (true) reading. */
  readonly #flow: (go: boolean) => void;
  readonly #stageBytes: number;
  readonly #pauseBytes: number;
  /** A write of ours in flight: nothing it holds may change until its callback. */
  #busy = false;
  /** Bytes waiting for the write in flight: one buffer, or more for a chunk past one. */
  #staged: Stage[] = [];
  #stagedBytes = 0;
  /** Staging buffers whose writes completed, kept for the next (at most MAX_SPARES). */
  #spares: Buffer[] = [];
  #paused = false;

  /**
   * Whether a buffer about to be written may stage again once its write completed: always for a
   * socket (the kernel has copied the bytes by then); for an in-process end
   * (src/tunnels/in-process.ts) only while its reader consumes (its writes complete once the
   * reader is done with the bytes), not when it is handed the very Buffers and may keep them.
   */
  readonly #reuse: () => boolean;

  constructor(
    socket: Writable,
    flow: (go: boolean) => void,
    stageBytes: number,
    pauseBytes: number,
    reuse: () => boolean = () => true,
  ) {
    this.socket = socket;
    this.#reuse = reuse;
    this.#flow = flow;
    this.#stageBytes = stageBytes;
    this.#pauseBytes = pauseBytes;
  }

  /** Whether the feeding socket is paused by this writer. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Bytes staged and not yet written. */
  get stagedBytes(): number {
    return this.#stagedBytes;
  }

  /**
   * Whether `socket.write` may be given bytes that are not ours to keep: nothing of ours in
   * flight, nothing staged, nothing queued or corked on the socket, and no staging buffer made
   * yet (a tunnel that has needed one stages everything, in buffers already made).
   */
  protected get idle(): boolean {
    const s = this.socket;
    return (
      !this.#busy &&
      this.#stagedBytes === 0 &&
      this.#spares.length === 0 &&
      s.writableLength === 0 &&
      s.writableCorked === 0
    );
  }

  /** Writes bytes the caller owns (or that the socket consumes at once) as the write in flight. */
  protected writeNow(parts: Uint8Array[]): void {
    const s = this.socket;
    this.#busy = true;
    s.cork();
    for (let i = 0; i < parts.length; i++)
      s.write(parts[i], i === parts.length - 1 ? this.#written : undefined);
    s.uncork();
  }

  /**
   * Reserves `n` contiguous bytes (at most the staging size) at the end of what is staged and
   * returns where they go; the caller fills them at once.
   */
  protected reserve(n: number): { buf: Buffer; at: number } {
    let stage = this.#staged.at(-1);
    if (!stage || stage.used + n > stage.buf.byteLength) {
      stage = { buf: this.#take(n), used: 0 };
      this.#staged.push(stage);
    }
    const at = stage.used;
    stage.used += n;
    this.#stagedBytes += n;
    return { buf: stage.buf, at };
  }

  /**
   * A staging buffer for at least `n` bytes: a spare one, else a new one, small unless what is
   * staged meanwhile outgrew one already (bytes that come faster than one write at a time).
   */
  #take(n: number): Buffer {
    const at = this.#spares.findIndex((b) => b.byteLength >= n);
    if (at >= 0) return this.#spares.splice(at, 1)[0];
    const size = this.#staged.length === 0 ? FIRST_STAGE_BYTES : this.#stageBytes;
    return Buffer.allocUnsafeSlow(Math.max(n, size));
  }

  /** Copies `bytes` into the staging buffers. */
  protected copy(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.byteLength; ) {
      const last = this.#staged.at(-1);
      const room = last ? last.buf.byteLength - last.used : 0;
      const n = Math.min(bytes.byteLength - at, room > 0 ? room : this.#stageBytes);
      const into = this.reserve(n);
      into.buf.set(bytes.subarray(at, at + n), into.at);
      at += n;
    }
  }

  /** Writes what is staged now, unless a write is in flight (its completion will). */
  flush(): void {
    if (!this.#busy) this.#writeStaged();
    if (this.#stagedBytes > this.#pauseBytes && !this.#paused) {
      this.#paused = true;
      this.#flow(false);
    }
  }

  /**
   * Writes what is staged even behind a write in flight (the stream keeps them in order, and no
   * buffer is reused before its own write completed), for a last write such as an end.
   */
  protected flushAll(): void {
    this.#writeStaged();
  }

  #writeStaged(): void {
    const s = this.socket;
    const out = this.#staged;
    this.#staged = [];
    this.#stagedBytes = 0;
    if (out.length === 0 || s.destroyed || s.writableEnded) return;
    this.#busy = true;
    const reuse = this.#reuse();
    const done = () => {
      // Written: the buffers are ours again; the largest are kept.
      if (reuse) for (const o of out) this.#spares.push(o.buf);
      if (this.#spares.length > MAX_SPARES) {
        this.#spares.sort((x, y) => y.byteLength - x.byteLength);
        this.#spares.length = MAX_SPARES;
      }
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
    if (this.#stagedBytes > 0) this.#writeStaged();
    if (this.#paused && this.#stagedBytes <= this.#pauseBytes) {
      this.#paused = false;
      this.#flow(true);
    }
  };
}
