/**
 * The framing inside a data connection's TLS (docs/tunnels.md, data connections). TLS 1.3 does
 * the cryptography; this only marks where each direction ends. Node reports a TCP FIN that came
 * without TLS's close_notify as a clean end, so a connection cut by someone on the path (or a
 * crashed agent) would look like a finished transfer. Each write is therefore a frame
 * `[u32 big-endian: FIN bit | length][bytes]`, and a direction ends with an empty FIN frame: a
 * TCP end without one is a cut, passed on as a reset. No crypto here: TLS authenticates every
 * byte of the frames, headers included.
 */
import type { Socket } from 'node:net';
import { TunnelProtocolError } from '../../errors.ts';

/** The FIN bit of a frame header. */
const FIN_BIT = 0x8000_0000;
/** Largest frame: a socket read is at most 64 KiB; this bounds what a peer may claim. */
export const MAX_FRAME_BYTES = 1024 * 1024;
const HEADER_BYTES = 4;
const FIN_FRAME = Buffer.from([0x80, 0, 0, 0]);

/** A piece of a frame's payload, or the end of the direction. */
export type FramePiece = { bytes: Buffer; last: boolean } | { fin: true };

/**
 * Writes `chunk` as one frame, as one vectored write; returns what `write` said about the
 * buffer. `chunk` may be a shared read buffer (src/runtime/socket-reader.ts): it is copied when the socket
 * would keep a reference to it past this call (a write already in progress or queued).
 */
export function writeFrame(socket: Socket, chunk: Uint8Array): boolean {
  if (socket.destroyed || socket.writableEnded || chunk.byteLength === 0) return !socket.destroyed;
  // A TLS socket encrypts (and so copies) what it is given at once, unless it is still busy with
  // an earlier write, in which case the stream queues the reference: then the frame is built in
  // a buffer of its own (one copy, which the TLS socket then takes without copying again).
  if (socket.writableLength > 0) {
    const frame = Buffer.allocUnsafe(HEADER_BYTES + chunk.byteLength);
    frame.writeUInt32BE(chunk.byteLength, 0);
    frame.set(chunk, HEADER_BYTES);
    return socket.write(frame);
  }
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(chunk.byteLength, 0);
  socket.cork();
  socket.write(header);
  const ok = socket.write(chunk);
  socket.uncork();
  return ok;
}

/**
 * Ends the tunnel's direction with the FIN frame, and the socket's write side with it; with
 * `keepOpen` (a data connection both ends reuse, splice.ts) the socket stays open for the next
 * tunnel.
 */
export function endFrames(socket: Socket, keepOpen = false): void {
  if (socket.destroyed || socket.writableEnded) return;
  if (keepOpen) socket.write(FIN_FRAME);
  else socket.end(FIN_FRAME);
}

/** Splits incoming bytes into frame pieces without copying them; throws on a bad header. */
export class FrameReader {
  /** Bytes of the current frame's payload still to come. */
  #left = 0;
  /** A header split across chunks. */
  #head = Buffer.alloc(HEADER_BYTES);
  #headGot = 0;
  #finished = false;

  /** True once the FIN frame came. */
  get finished(): boolean {
    return this.#finished;
  }

  /** The pieces in `chunk`; a piece's bytes are views into it. */
  push(chunk: Buffer): FramePiece[] {
    const out: FramePiece[] = [];
    let at = 0;
    while (at < chunk.byteLength) {
      if (this.#finished) throw new TunnelProtocolError('BAD_FRAME', 'bytes after the FIN frame', 'invalid');
      if (this.#left > 0) {
        const n = Math.min(this.#left, chunk.byteLength - at);
        this.#left -= n;
        out.push({ bytes: chunk.subarray(at, at + n), last: this.#left === 0 });
        at += n;
        continue;
      }
      const n = Math.min(HEADER_BYTES - this.#headGot, chunk.byteLength - at);
      chunk.copy(this.#head, this.#headGot, at, at + n);
      this.#headGot += n;
      at += n;
      if (this.#headGot < HEADER_BYTES) break;
      this.#headGot = 0;
      const word = this.#head.readUInt32BE(0);
      const length = word & ~FIN_BIT;
      if (word & FIN_BIT) {
        if (length !== 0) throw new TunnelProtocolError('BAD_FRAME', 'a FIN frame with bytes', 'invalid');
        this.#finished = true;
        out.push({ fin: true });
      } else if (length === 0 || length > MAX_FRAME_BYTES) {
        throw new TunnelProtocolError('BAD_FRAME', `a frame of ${length} bytes`, 'invalid');
      } else this.#left = length;
    }
    return out;
  }
}
