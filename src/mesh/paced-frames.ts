/**
 * Length-prefixed frames read from a libp2p stream with backpressure.
 *
 * libp2p's `lpStream` reads through `byteStream`, which appends every message the stream
 * dispatches to a buffer of its own whether or not anyone reads, so yamux keeps granting window
 * and a writer faster than the reader (`tar c . | plexus exec -i n2 -- tar x`, to a node whose
 * disk is slower than the link) fills that buffer until byteStream aborts the stream at 4 MiB
 * ("Read buffer overflow"). Here the stream is paused while more than `highWaterBytes` wait
 * unread, so the writer is held back by yamux's window instead, and resumed as reads bring it
 * under. The mark is always above one whole frame, so a paused stream never starves a read of
 * the rest of its frame.
 */
import type { Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { streamPauser } from './stream-pause.ts';

/** Default: this much may wait unread before the stream is paused. */
export const PACED_HIGH_WATER_BYTES = 1024 * 1024;

/** What `pacedFrames` returns: reads and writes of whole frames. */
export interface PacedFrames {
  /** The next frame, as lpStream's read (same errors). */
  read(options?: { signal?: AbortSignal }): Promise<Uint8Array>;
  write(data: Uint8Array, options?: { signal?: AbortSignal }): Promise<void>;
  /** Bytes dispatched by the stream and not yet returned by `read` (for tests and logs). */
  readonly unread: number;
}

/** Bytes of the varint length prefix of a frame of `n` bytes. */
function prefixBytes(n: number): number {
  let bytes = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) bytes++;
  return bytes;
}

/**
 * Wraps `stream` (set its `maxReadBufferLength` first: what may wait in it while paused);
 * frames over `maxDataLength` are refused as lpStream refuses them.
 */
export function pacedFrames(
  stream: Stream,
  opts: { maxDataLength: number; highWaterBytes?: number },
): PacedFrames {
  const high = Math.max(opts.highWaterBytes ?? PACED_HIGH_WATER_BYTES, opts.maxDataLength + 16);
  // A resume() hands over everything the stream held while paused in one message, so the byte
  // buffer may briefly hold the mark plus all of that; the stream's own limit bounds it.
  const lp = lpStream(stream, {
    maxDataLength: opts.maxDataLength,
    maxBufferSize: high + stream.maxReadBufferLength,
  });
  let unread = 0;
  const pauser = streamPauser(
    stream,
    () => {
      if (stream.readStatus === 'readable') stream.pause();
    },
    () => unread > high,
  );
  stream.addEventListener('message', (evt) => {
    unread += evt.data.byteLength;
    if (unread > high) pauser.pause();
  });
  return {
    async read(options) {
      const frame = (await lp.read(options)).subarray();
      unread -= frame.byteLength + prefixBytes(frame.byteLength);
      if (unread <= high) pauser.resume();
      return frame;
    },
    async write(data, options) {
      await lp.write(data, options);
    },
    get unread() {
      return unread;
    },
  };
}
