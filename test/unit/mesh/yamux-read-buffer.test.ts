/**
 * A paused yamux stream stops sending window updates, but its sender may still send what the
 * window already allows: up to the maximum window, 16 MiB, once it has grown. libp2p aborts a
 * stream whose unread data passes its read-buffer cap (4 MiB by default) with a StreamBufferError,
 * so a cap below the window turns backpressure into a reset. A relayed connection to a NAT'd node
 * rides such a stream on the relay's connection, which is how large relayed transfers were reset
 * mid-way on a loaded machine. The mesh's stream options keep the cap above the window.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { yamux } from '@chainsafe/libp2p-yamux';
import type { Stream } from '@libp2p/interface';
import { multiaddrConnectionPair } from '@libp2p/utils';
import { YAMUX_STREAM_OPTIONS } from '../../../src/mesh/constants.ts';

const aborts: { abort(err: Error): void }[] = [];
after(() => {
  // The muxers' keep-alive timers would hold the process open.
  for (const m of aborts) m.abort(new Error('test done'));
});

/** Two ends of one stream whose window is already at its maximum, as after a fast transfer. */
async function grownWindowPair(): Promise<[Stream, Stream]> {
  const [c1, c2] = multiaddrConnectionPair();
  const init = {
    streamOptions: {
      ...YAMUX_STREAM_OPTIONS,
      initialStreamWindowSize: YAMUX_STREAM_OPTIONS.maxStreamWindowSize,
    },
  };
  const m1 = yamux(init)().createStreamMuxer(c1);
  const m2 = yamux(init)().createStreamMuxer(c2);
  aborts.push(m1, m2, c1, c2);
  const inbound = once(m2, 'stream') as Promise<[CustomEvent<Stream>]>;
  const a = await m1.createStream();
  a.send(new Uint8Array(0));
  const [evt] = await inbound;
  return [a, evt.detail];
}

describe('yamux read buffer', () => {
  it('the read-buffer cap is above the largest window', () => {
    assert.ok(YAMUX_STREAM_OPTIONS.maxReadBufferLength > YAMUX_STREAM_OPTIONS.maxStreamWindowSize);
  });

  it('a paused reader holds a full window of unread data; flow control, not a reset, stops the sender', async () => {
    const [a, b] = await grownWindowPair();
    b.pause();
    const chunk = new Uint8Array(256 * 1024).fill(7);
    const total = YAMUX_STREAM_OPTIONS.maxStreamWindowSize;
    let aborted: Error | undefined;
    b.addEventListener('close', (evt) => {
      aborted = (evt as unknown as { error?: Error }).error;
    });
    for (let sent = 0; sent < total && a.status === 'open'; sent += chunk.length) {
      if (!a.send(chunk)) await Promise.race([once(a, 'drain'), once(a, 'close')]);
    }
    // Let every frame arrive while the reader is paused.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(aborted, undefined, `the paused stream was aborted: ${aborted?.message}`);
    assert.equal(b.status, 'open');
    let got = 0;
    const reading = (async () => {
      for await (const buf of b) {
        got += buf.byteLength;
        if (got >= total) break;
      }
    })();
    b.resume();
    await reading;
    assert.equal(got, total);
  });
});
