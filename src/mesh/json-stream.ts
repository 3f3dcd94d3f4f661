/** One JSON message per length-prefixed frame on a libp2p stream, with a size limit. */
import type { Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { ProtocolError } from './errors.ts';

/** A JSON request/response channel over a stream. */
export interface JsonChannel {
  read(signal?: AbortSignal): Promise<unknown>;
  write(value: unknown, signal?: AbortSignal): Promise<void>;
  stream: Stream;
}

/** Wraps `stream`; frames over `maxBytes` abort the exchange with a ProtocolError. */
export function jsonChannel(stream: Stream, maxBytes: number): JsonChannel {
  const lp = lpStream(stream, { maxDataLength: maxBytes });
  return {
    stream,
    async read(signal) {
      let buf: Uint8Array;
      try {
        buf = (await lp.read({ signal })).subarray();
      } catch (err) {
        const name = (err as Error).name;
        if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError') {
          throw new ProtocolError('FRAME_TOO_LARGE', `frame larger than ${maxBytes} bytes`, 'too_large');
        }
        if (name === 'AbortError' || name === 'TimeoutError')
          throw new ProtocolError('TIMEOUT', 'peer did not answer in time', 'unavailable');
        throw new ProtocolError('STREAM_FAILED', `stream failed: ${(err as Error).message}`, 'unavailable');
      }
      try {
        return JSON.parse(Buffer.from(buf).toString('utf8'));
      } catch {
        throw new ProtocolError('MALFORMED', 'frame is not valid JSON', 'invalid');
      }
    },
    async write(value, signal) {
      const bytes = Buffer.from(JSON.stringify(value));
      if (bytes.length > maxBytes)
        throw new ProtocolError('FRAME_TOO_LARGE', `frame larger than ${maxBytes} bytes`, 'too_large');
      await lp.write(bytes, { signal });
    },
  };
}

/** Sends the one reply of a request/response exchange and closes the stream (aborts it on failure). */
export async function replyAndClose(ch: JsonChannel, reply: unknown, signal: AbortSignal): Promise<void> {
  try {
    await ch.write(reply, signal);
    await ch.stream.close({ signal });
  } catch (err) {
    ch.stream.abort(err as Error);
  }
}
