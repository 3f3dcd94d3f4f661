/**
 * splice() joins a TCP socket to a libp2p stream (issue 6). A client socket and a target
 * server are joined through a stream pair, in-process: client → splice → stream ⇄ stream →
 * splice → target, over a real yamux session (its flow control is what backpressure relies
 * on). Proves half-close, resets passed on as resets, and bounded buffering.
 */
import { once } from 'node:events';
import type { Server } from 'node:net';
import { after, describe } from 'node:test';
import { yamux } from '@chainsafe/libp2p-yamux';
import type { Stream } from '@libp2p/interface';
import { multiaddrConnectionPair } from '@libp2p/utils';
import type { SpliceResult } from '../../src/tunnels/carriers/carrier.ts';
import { splice } from '../../src/tunnels/carriers/stream/splice.ts';
import { socketPair } from '../helpers/sockets.ts';
import { spliceContract } from '../helpers/splice-contract.ts';

const opts = {
  coalesceBytes: 256 * 1024,
  highWaterBytes: 4 * 1024 * 1024,
  maxReadBufferBytes: 64 * 1024 * 1024,
};

/** Two ends of one yamux stream, with the window sizes the mesh uses (src/mesh/node.ts). */
const muxers: { abort(err: Error): void }[] = [];

async function yamuxPair(): Promise<[Stream, Stream]> {
  const [c1, c2] = multiaddrConnectionPair();
  const init = {
    streamOptions: { initialStreamWindowSize: 256 * 1024, maxStreamWindowSize: 16 * 1024 * 1024 },
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

/** client ⇄ [near splice] ⇄ stream pair ⇄ [far splice] ⇄ target. */
async function tunnel(servers: Server[]) {
  const [client, near] = await socketPair(servers);
  const [farSocket, target] = await socketPair(servers);
  const [a, b] = await yamuxPair();
  const results: Promise<SpliceResult>[] = [splice(near, a, opts), splice(farSocket, b, opts)];
  for (const s of [client, target]) s.on('error', () => {});
  return { client, target, results: Promise.all(results) };
}

describe('splice', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
    // The muxers' keep-alive timers would hold the process open.
    for (const m of muxers) m.abort(new Error('test done'));
  });

  spliceContract(() => tunnel(servers), { bothEndsReset: true });
});
