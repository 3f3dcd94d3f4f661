/**
 * The sending side of a tunnel's data connection (splice.ts): local bytes go out as frames
 * (frames.ts) into TLS, staged in reused buffers while a write is in flight (staged-writer.ts).
 */
import type { TLSSocket } from 'node:tls';
import { endFrames } from './frames.ts';
import { StagedWriter } from './staged-writer.ts';

/** Length of a frame header (frames.ts). */
const HEADER_BYTES = 4;
/** The largest chunk a socket read gives (Node reads 64 KiB; src/runtime/socket-reader.ts likewise). */
const READ_BYTES = 64 * 1024;
/** One staging buffer: four frames of a full read, the payload of one 256 KiB TLS write. */
export const STAGE_BYTES = 4 * (HEADER_BYTES + READ_BYTES);
/** Past this much waiting, the local socket is paused: one more full read still fits. */
const STAGE_PAUSE_BYTES = STAGE_BYTES - (HEADER_BYTES + READ_BYTES);

/** Writes one tunnel direction's frames into a data connection's TLS socket. */
export class FrameWriter extends StagedWriter {
  /** The data connection, typed as such for its FIN frame. */
  readonly #tls: TLSSocket;

  /** `flow` pauses (false) and resumes (true) the local socket. */
  constructor(socket: TLSSocket, flow: (go: boolean) => void) {
    super(socket, flow, STAGE_BYTES, STAGE_PAUSE_BYTES);
    this.#tls = socket;
  }

  /** Sends `chunk` (valid only during this call) as frames. */
  send(chunk: Uint8Array): void {
    const s = this.socket;
    if (s.destroyed || s.writableEnded || chunk.byteLength === 0) return;
    if (this.idle && chunk.byteLength <= READ_BYTES) {
      // The TLS socket encrypts an idle write at once (its SSL_write copies it): no staging.
      const header = Buffer.allocUnsafe(HEADER_BYTES);
      header.writeUInt32BE(chunk.byteLength, 0);
      this.writeNow([header, chunk]);
      return;
    }
    // Frames of at most a read's size (a carrier's first bytes may be more).
    for (let at = 0; at < chunk.byteLength; at += READ_BYTES) {
      const part = chunk.subarray(at, Math.min(chunk.byteLength, at + READ_BYTES));
      const into = this.reserve(HEADER_BYTES + part.byteLength);
      into.buf.writeUInt32BE(part.byteLength, into.at);
      into.buf.set(part, into.at + HEADER_BYTES);
    }
    this.flush();
  }

  /**
   * Ends the direction with the FIN frame (frames.ts, endFrames) behind every frame staged; with
   * `keepOpen` the socket stays open for the next tunnel.
   */
  end(keepOpen: boolean): void {
    this.flushAll();
    endFrames(this.#tls, keepOpen);
  }
}
