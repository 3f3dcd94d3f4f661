/**
 * The in-memory connection an in-process service gets (src/tunnels/in-process.ts): it must
 * behave as the TCP socket the carriers' splices expect, since they splice it the same way.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { connectInProcess, InProcessEnd } from '../../../src/tunnels/in-process.ts';

/** Resolves with how `end` closed: the error code it saw, or `closed`. */
function closing(end: InProcessEnd): Promise<string> {
  return new Promise((resolve) => {
    let code = 'closed';
    end.on('error', (e: NodeJS.ErrnoException) => {
      code = e.code ?? 'error';
    });
    end.once('close', () => resolve(code));
  });
}

const collect = async (end: InProcessEnd) => {
  const got: Buffer[] = [];
  for await (const c of end) got.push(c as Buffer);
  return Buffer.concat(got).toString();
};

describe('in-process connections', () => {
  it('carries bytes both ways with half-close, the same Buffers, then closes both ends', async () => {
    const [a, b] = InProcessEnd.pair();
    const chunk = Buffer.from('ping');
    const first = once(b, 'data');
    a.write(chunk);
    assert.equal((await first)[0], chunk, 'no copy');
    b.pause();
    a.end('!');
    // a's direction is over; b still answers.
    const atB = collect(b);
    b.end('pong');
    assert.equal(await atB, '!');
    assert.equal(await collect(a), 'pong');
    await Promise.all([a, b].map((end) => end.closed || once(end, 'close')));
  });

  it('holds a writer while the reader does not read (backpressure), and drains when it does', async () => {
    const [a, b] = InProcessEnd.pair();
    let writes = 0;
    while (a.write(Buffer.alloc(64 * 1024)) && writes < 1000) writes++;
    assert.ok(writes < 20, `held after ${writes} writes`);
    assert.ok(a.writableLength > 0);
    const drained = once(a, 'drain');
    b.resume();
    await drained;
    a.destroy();
    b.destroy();
  });

  it('destroy() is a close: the other end reads its end, and a write to it then fails (EPIPE)', async () => {
    const [a, b] = InProcessEnd.pair();
    const bClosed = closing(b);
    b.resume();
    a.destroy();
    await once(b, 'end');
    b.write('late');
    assert.equal(await bClosed, 'EPIPE');
  });

  it('a close with bytes left unread resets the other end', async () => {
    const [a, b] = InProcessEnd.pair();
    const aClosed = closing(a);
    a.write('never read');
    b.destroy();
    assert.equal(await aClosed, 'ECONNRESET');
  });

  it('resetAndDestroy() resets the other end and emits no error on its own', async () => {
    const [a, b] = InProcessEnd.pair();
    const aClosed = closing(a);
    const bClosed = closing(b);
    b.resume();
    a.resetAndDestroy();
    assert.deepEqual(await Promise.all([aClosed, bClosed]), ['closed', 'ECONNRESET']);
  });

  it('hands the service its end on connect, and passes on its refusal', () => {
    let theirs: InProcessEnd | undefined;
    const ours = connectInProcess({ name: 'svc', accept: (end) => (theirs = end) });
    assert.ok(theirs && theirs !== ours);
    assert.throws(
      () =>
        connectInProcess({
          name: 'svc',
          accept: () => {
            throw new Error('taken');
          },
        }),
      /taken/,
    );
  });

  it('hands a consuming reader each chunk with done: the write completes only then, earlier bytes first', async () => {
    const [a, b] = InProcessEnd.pair();
    a.write('early');
    await new Promise((r) => setImmediate(r));
    const got: string[] = [];
    const dones: (() => void)[] = [];
    b.consume((chunk, done) => {
      got.push(chunk.toString());
      dones.push(done);
    });
    assert.ok(a.peerConsumes);
    assert.deepEqual(got, ['early'], 'what was read before comes first');
    let completed = false;
    a.write('next', () => {
      completed = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, ['early', 'next']);
    assert.equal(completed, false, 'the write waits for the reader');
    dones[1]();
    await new Promise((r) => setImmediate(r));
    assert.equal(completed, true);
    const ended = once(b, 'end');
    b.resume();
    a.end();
    await ended;
  });

  it('holds what is written to a paused consuming reader, with its writer, until it resumes', async () => {
    const [a, b] = InProcessEnd.pair();
    const got: string[] = [];
    b.consume((chunk, done) => {
      got.push(chunk.toString());
      done();
    });
    b.pause();
    let completed = false;
    a.write('held', () => {
      completed = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, []);
    assert.equal(completed, false);
    b.resume();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, ['held']);
    assert.equal(completed, true);
  });

  it('writeTransient hands bytes to a reader that consumes at once as they are, else a copy', async () => {
    const [a, b] = InProcessEnd.pair();
    const seen: Buffer[] = [];
    b.consume(
      (chunk, done) => {
        seen.push(chunk);
        done();
      },
      { atOnce: true },
    );
    const shared = Buffer.from('abcd');
    a.writeTransient(shared);
    assert.equal(seen[0], shared, 'no copy for a reader done with it at once');
    b.pause();
    a.writeTransient(shared);
    shared.fill(0x7a); // the next read overwrites the shared buffer
    b.resume();
    await new Promise((r) => setImmediate(r));
    assert.equal(seen[1].toString(), 'abcd', 'copied while the reader was paused');
    const [c, d] = InProcessEnd.pair();
    const plain = Buffer.from('efgh');
    const first = once(d, 'data');
    c.writeTransient(plain);
    plain.fill(0x7a);
    assert.equal((await first)[0].toString(), 'efgh', 'copied for a reader that keeps what it reads');
  });
});
