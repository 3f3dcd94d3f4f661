/**
 * The receiving side of a tunnel's data connection (splice.ts): decrypted bytes on their way to
 * the local socket, staged in reused buffers while a write is in flight (staged-writer.ts).
 */
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { InProcessEnd } from '../../in-process.ts';
import { StagedWriter } from './staged-writer.ts';

/** One staging buffer: sixteen TLS records, one write to the local socket. */
const STAGE_BYTES = 256 * 1024;
/**
 * Past this much waiting, the data connection is paused. Half the buffer: what TLS already
 * decrypted from its last TCP read still comes after the pause.
 */
const STAGE_PAUSE_BYTES = STAGE_BYTES / 2;
/** Bytes small enough to be copied into a Buffer of their own when nothing waits. */
const SMALL_BYTES = 4096;

/** Writes decrypted bytes into the local socket. */
export class LocalWriter extends StagedWriter {
  /**
   * `flow` pauses (false) and resumes (true) the data connection. An in-process end keeps the
   * Buffers it is written unless its reader consumes them (in-process.ts), so until then each of
   * its writes gets buffers of its own.
   */
  constructor(local: Writable, flow: (go: boolean) => void) {
    const reuse = () => local instanceof Socket || (local instanceof InProcessEnd && local.peerConsumes);
    super(local, flow, STAGE_BYTES, STAGE_PAUSE_BYTES, reuse);
  }

  /** Takes `bytes` (valid only during this call); they leave at the next flush. */
  push(bytes: Uint8Array): void {
    const s = this.socket;
    if (s.destroyed || s.writableEnded || bytes.byteLength === 0) return;
    // A request or an answer: a small Buffer of its own (Node's pool) instead of a staging one.
    if (this.idle && bytes.byteLength <= SMALL_BYTES) this.writeNow([Buffer.from(bytes)]);
    else this.copy(bytes);
  }

  /** Ends the local socket's write side behind everything staged. */
  end(): void {
    this.flushAll();
    if (!this.socket.writableEnded) this.socket.end();
  }
}
