/**
 * The frames of `/plexus/tcp/1.0.0` on a libp2p stream: one unsigned-varint length prefix and
 * that many bytes of JSON. The opener sends one frame (a tunnel request, handshake.ts, or a
 * ticket request, carriers/data/tickets.ts); the server answers with one; after a tunnel's reply
 * the stream carries raw bytes (splice.ts).
 */
import type { Stream } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';
import { TunnelProtocolError } from '../../errors.ts';
import { waitForHandshake } from '../handshake-wait.ts';

/** Encodes a value as varint length + JSON. */
export function encodeFrame(value: unknown): Uint8Array {
  const body = Buffer.from(JSON.stringify(value));
  const prefix: number[] = [];
  let n = body.length;
  while (n >= 0x80) {
    prefix.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  prefix.push(n);
  return Buffer.concat([Buffer.from(prefix), body]);
}

/**
 * Reads one frame from `stream`, listening to its `message` events (no extra copies of the data
 * that follows). Resolves with the decoded JSON and the bytes that arrived after the frame.
 */
export function readFrame(
  stream: Stream,
  maxBytes: number,
  signal: AbortSignal,
): Promise<{ value: unknown; rest: Uint8ArrayList }> {
  return waitForHandshake<{ value: unknown; rest: Uint8ArrayList }>(signal, (wait) => {
    const buf = new Uint8ArrayList();
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }) => {
      buf.append(evt.data);
      let len = 0;
      let shift = 0;
      let i = 0;
      for (;;) {
        if (i >= buf.byteLength) return; // need more bytes for the prefix
        const b = buf.get(i++);
        len |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) break;
        shift += 7;
        if (shift > 21)
          return wait.fail(new TunnelProtocolError('BAD_FRAME', 'frame length prefix too long', 'invalid'));
      }
      if (len > maxBytes)
        return wait.fail(
          new TunnelProtocolError('FRAME_TOO_LARGE', `frame larger than ${maxBytes} bytes`, 'too_large'),
        );
      if (buf.byteLength < i + len) return;
      let value: unknown;
      try {
        value = JSON.parse(Buffer.from(buf.subarray(i, i + len)).toString('utf8'));
      } catch {
        return wait.fail(new TunnelProtocolError('BAD_FRAME', 'frame is not valid JSON', 'invalid'));
      }
      buf.consume(i + len);
      wait.done({ value, rest: buf });
    };
    const onClose = () => wait.closed();
    stream.addEventListener('message', onMessage);
    stream.addEventListener('close', onClose);
    stream.addEventListener('end', onClose);
    return () => {
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('close', onClose);
      stream.removeEventListener('end', onClose);
    };
  });
}
