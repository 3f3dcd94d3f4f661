/**
 * The part of the tunnel carrier contract that holds below the handshake (docs/tunnels.md):
 * whatever joins the client socket to the target socket (a data connection, one spliced by a
 * relay), half-close passes each FIN while the other direction flows, a reset arrives as a
 * reset, and a slow reader holds the writer back instead of everything being buffered. The
 * target may be an in-process service's end (src/tunnels/in-process.ts): it must hold the same.
 * Once a tunnel is over, the sockets the splices held let go of it (src/runtime/closed-socket.ts).
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import type { SpliceResult } from '../../src/tunnels/carriers/carrier.ts';
import type { LocalSocket } from '../../src/tunnels/in-process.ts';
import { readAll, writeUntilHeldBack } from './sockets.ts';

/** A client socket and a target socket joined by the carrier under test, and how each end ended. */
export interface JoinedSockets {
  client: Socket;
  target: LocalSocket;
  /** The sockets the splices themselves hold: the far ends of `client` and of `target`. */
  locals: LocalSocket[];
  results: Promise<SpliceResult[]>;
}

/**
 * Registers the contract's tests (in the calling describe) over tunnels made by `tunnel`. With
 * `bothEndsReset`, a reset must leave both splices unclean (the stream carrier), else one.
 */
export function spliceContract(
  tunnel: () => Promise<JoinedSockets>,
  opts: { bothEndsReset?: boolean } = {},
): void {
  test('half-close: each FIN passes through while the other direction keeps flowing', async () => {
    const { client, target, results } = await tunnel();
    const atTarget = readAll(target);
    client.end('request');
    assert.equal((await atTarget).toString(), 'request');
    const atClient = readAll(client);
    target.end('answer');
    assert.equal((await atClient).toString(), 'answer');
    const [near, far] = await results;
    assert.equal(near?.clean && far?.clean, true, JSON.stringify([near, far]));
    assert.equal(near?.sent, 'request'.length);
    assert.equal(near?.received, 'answer'.length);
  });

  test('a reset on one side reaches the other as a reset', async () => {
    const { client, target, results } = await tunnel();
    const got = readAll(client);
    target.write(Buffer.alloc(1024 * 1024));
    await new Promise((r) => setTimeout(r, 50));
    target.resetAndDestroy();
    await assert.rejects(got, { code: 'ECONNRESET' });
    const [near, far] = await results;
    if (opts.bothEndsReset) assert.deepEqual([near?.clean, far?.clean], [false, false]);
    else assert.equal(near?.clean || far?.clean, false);
  });

  test('a slow reader holds back the writer instead of buffering everything', async () => {
    const { client, target, results } = await tunnel();
    client.pause();
    const written = await writeUntilHeldBack(target, 512);
    assert.ok(written < 512 * 1024 * 1024, `the writer was held back after ${written} bytes`);
    const got = readAll(client);
    client.resume();
    target.end();
    assert.equal((await got).length, written);
    client.end();
    const [near, far] = await results;
    assert.equal(near?.clean && far?.clean, true);
  });

  test('once a tunnel is over, its closed sockets keep no listener of it', async () => {
    const { client, target, locals, results } = await tunnel();
    client.end('request');
    await readAll(target);
    const atClient = readAll(client);
    target.end('answer');
    await atClient;
    await results;
    // What a closed socket's listeners reach outlives V8's young-generation collections until a
    // full one (src/runtime/closed-socket.ts): only the shared no-op 'error' listener may stay.
    for (const s of locals) {
      assert.equal(s.destroyed, true);
      assert.deepEqual(s.eventNames(), ['error']);
      assert.equal(s.listenerCount('error'), 1);
    }
  });
}
