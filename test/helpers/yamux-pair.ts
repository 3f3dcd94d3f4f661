/**
 * Two ends of one stream over a real in-process yamux session (its flow control is what
 * backpressure relies on), with the window sizes the mesh uses (src/mesh/node.ts) or another
 * initial window. Call `closeMuxers()` in `after`: their keep-alive timers hold the process open.
 */
import { once } from 'node:events';
import { yamux } from '@chainsafe/libp2p-yamux';
import type { Stream } from '@libp2p/interface';
import { multiaddrConnectionPair } from '@libp2p/utils';

/** The mesh's largest stream window. */
export const MAX_WINDOW = 16 * 1024 * 1024;

const muxers: { abort(err: Error): void }[] = [];

/** A stream and its far end. */
export async function yamuxPair(initialWindow = 256 * 1024): Promise<[Stream, Stream]> {
  const [c1, c2] = multiaddrConnectionPair();
  const init = {
    streamOptions: { initialStreamWindowSize: initialWindow, maxStreamWindowSize: MAX_WINDOW },
  };
  const m1 = yamux(init)().createStreamMuxer(c1);
  const m2 = yamux(init)().createStreamMuxer(c2);
  muxers.push(m1, m2, c1, c2);
  const inbound = once(m2, 'stream') as Promise<[CustomEvent<Stream>]>;
  const a = await m1.createStream();
  a.send(new Uint8Array(0)); // opens the stream on the far side
  const [evt] = await inbound;
  return [a, evt.detail];
}

/** Ends every session yamuxPair made. */
export function closeMuxers(): void {
  for (const m of muxers.splice(0)) m.abort(new Error('test done'));
}
