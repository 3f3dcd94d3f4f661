/**
 * splice() joins a TCP socket to a libp2p stream (issue 6). A client socket and a target
 * server are joined through a stream pair, in-process: client → splice → stream ⇄ stream →
 * splice → target, over a real yamux session (its flow control is what backpressure relies
 * on). Proves half-close, resets passed on as resets, and bounded buffering, also across a
 * pause that starts again while the stream hands over what it held.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:net';
import { after, describe, test } from 'node:test';
import type { SpliceResult } from '../../src/tunnels/carriers/carrier.ts';
import { splice } from '../../src/tunnels/carriers/stream/splice.ts';
import { InProcessEnd } from '../../src/tunnels/in-process.ts';
import { readAll, socketPair, writeUntilHeldBack } from '../helpers/sockets.ts';
import { spliceContract } from '../helpers/splice-contract.ts';
import { closeMuxers, MAX_WINDOW, yamuxPair } from '../helpers/yamux-pair.ts';

const opts = {
  coalesceBytes: 256 * 1024,
  highWaterBytes: 4 * 1024 * 1024,
  maxReadBufferBytes: 64 * 1024 * 1024,
};

/**
 * client ⇄ [near splice] ⇄ stream pair ⇄ [far splice] ⇄ target; with `inProcess`, the target
 * is an in-process service's end (src/tunnels/in-process.ts) instead of a loopback socket.
 */
async function tunnel(servers: Server[], initialWindow?: number, inProcess = false) {
  const [client, near] = await socketPair(servers);
  const [farSocket, target] = inProcess ? InProcessEnd.pair() : await socketPair(servers);
  const [a, b] = await yamuxPair(initialWindow);
  const results: Promise<SpliceResult>[] = [splice(near, a, opts), splice(farSocket, b, opts)];
  for (const s of [client, target]) s.on('error', () => {});
  return { client, target, near, nearStream: a, locals: [near, farSocket], results: Promise.all(results) };
}

describe('splice', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.close();
    closeMuxers();
  });

  spliceContract(() => tunnel(servers), { bothEndsReset: true });
  describe('to an in-process service', () => {
    spliceContract(() => tunnel(servers, undefined, true), { bothEndsReset: true });
  });

  test('a pause made while the stream hands over what it held still holds the writer back', async () => {
    // A full window from the start: what waits behind a pause is then far more than the
    // loopback socket takes at once, as on a fast link once the window has grown.
    const { client, target, near, nearStream, results } = await tunnel(servers, MAX_WINDOW);
    client.pause();
    let written = await writeUntilHeldBack(target, 256);
    assert.ok(nearStream.readStatus === 'paused' && nearStream.readBufferLength > 0, 'nothing waits');
    // Read until the near socket drains and the stream resumes, then stop at once: what the
    // stream hands over fills the socket again, so the splice must pause it anew.
    let read = 0;
    const count = (d: Buffer) => {
      read += d.length;
    };
    client.on('data', count);
    const resume = nearStream.resume.bind(nearStream);
    const refilled = new Promise<boolean>((r) => {
      nearStream.resume = () => {
        client.pause();
        resume();
        nearStream.resume = resume;
        r(near.writableNeedDrain);
      };
    });
    client.resume();
    assert.equal(await refilled, true, 'the hand-over did not fill the socket');
    assert.equal(nearStream.readStatus, 'paused');
    // The reader stopped: the writer must be held back again, with at most a window waiting
    // in the stream, never the 64 MiB past which libp2p aborts it.
    written += await writeUntilHeldBack(target, 256);
    assert.equal(nearStream.status, 'open', 'the stream was aborted');
    assert.ok(nearStream.readBufferLength <= MAX_WINDOW, `${nearStream.readBufferLength} bytes wait`);
    client.off('data', count);
    const rest = readAll(client);
    client.resume();
    target.end();
    assert.equal(read + (await rest).length, written);
    client.end();
    const [a, b] = await results;
    assert.equal(a?.clean && b?.clean, true, JSON.stringify([a, b]));
  });
});
