/**
 * The one-shot channels of `plexus cp`, reached as the node's tunnel server reaches them: the
 * service directory's lookup by name, then an in-process connection (src/tunnels/in-process.ts).
 * Hostile: a wrong secret is reset, logged and refused; a second connection, an expired or a
 * cancelled channel find nothing to connect to.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { type TransferChannels as Channels, TransferChannels } from '../../../src/shell/transfer-channel.ts';
import { connectInProcess, type InProcessEnd } from '../../../src/tunnels/in-process.ts';

/** A logger that keeps its warnings, to check a refused attempt is logged. */
function recordingLogger() {
  const lines: { msg: string; why?: string; kid?: string }[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)));
      cb();
    },
  });
  return { logger: pino({ level: 'warn' }, sink), lines };
}

const who = { kid: 'op-key', command: 'cmd-1' };

/** Connects to channel `name` as the tunnel server would; undefined when there is no such channel. */
function dial(channels: Channels, name: string): InProcessEnd | undefined {
  const target = channels.target(name);
  return target ? connectInProcess(target) : undefined;
}

/** Resolves how the end was closed: `reset` (ECONNRESET) or `closed`. */
function ending(s: InProcessEnd): Promise<'reset' | 'closed'> {
  return new Promise((resolve) => {
    let reset = false;
    s.on('error', (e: NodeJS.ErrnoException) => {
      reset = e.code === 'ECONNRESET';
    });
    s.resume();
    s.once('close', () => resolve(reset ? 'reset' : 'closed'));
  });
}

describe('one-shot transfer channels of plexus cp', () => {
  it('hands over the connection that presents the secret, with what followed it, then is gone', async () => {
    const channels = new TransferChannels(recordingLogger().logger);
    const ch = await channels.open(new AbortController().signal, who);
    assert.match(ch.service, /^cp-[0-9a-f]{24}$/);
    assert.equal(ch.secret.length, 32);
    const s = dial(channels, ch.service)!;
    s.write(Buffer.concat([ch.secret, Buffer.from('hello')]));
    const { socket, head } = await ch.accepted;
    let got = head.toString();
    socket.on('data', (c: Buffer) => {
      got += c.toString();
    });
    socket.resume();
    s.end(' world');
    await once(socket, 'end');
    assert.equal(got, 'hello world');
    assert.equal(channels.size, 0, 'unregistered after its one connection');
    // A second connection finds nothing to connect to (the tunnel server: UNKNOWN_SERVICE).
    assert.equal(dial(channels, ch.service), undefined);
    socket.destroy();
    s.destroy();
  });

  it('resets a wrong secret, logs it, refuses the transfer, and takes no second attempt', async () => {
    const { logger, lines } = recordingLogger();
    const channels = new TransferChannels(logger);
    const ch = await channels.open(new AbortController().signal, who);
    const intruder = dial(channels, ch.service)!;
    const ended = ending(intruder);
    const wrong = Buffer.from(ch.secret);
    wrong[31] ^= 1;
    intruder.write(Buffer.concat([wrong, Buffer.from('evil bytes')]));
    await assert.rejects(ch.accepted, { code: 'TRANSFER_REFUSED' });
    assert.equal(await ended, 'reset');
    assert.ok(
      lines.some(
        (l) => l.msg === 'transfer connection refused' && l.why === 'wrong secret' && l.kid === 'op-key',
      ),
      JSON.stringify(lines),
    );
    assert.equal(channels.size, 0);
    // The rightful owner, coming second, cannot get in.
    assert.equal(dial(channels, ch.service), undefined);
  });

  it('refuses a connection that closes before a whole secret, or sends it in pieces too slowly', async () => {
    const channels = new TransferChannels(recordingLogger().logger);
    const ch = await channels.open(new AbortController().signal, who);
    const s = dial(channels, ch.service)!;
    s.on('error', () => {});
    s.end(ch.secret.subarray(0, 31));
    await assert.rejects(ch.accepted, { code: 'TRANSFER_REFUSED' });
    s.destroy();
  });

  it('takes the secret split across writes', async () => {
    const channels = new TransferChannels(recordingLogger().logger);
    const ch = await channels.open(new AbortController().signal, who);
    const s = dial(channels, ch.service)!;
    s.write(ch.secret.subarray(0, 5));
    s.write(Buffer.concat([ch.secret.subarray(5), Buffer.from('x')]));
    const { socket, head } = await ch.accepted;
    assert.equal(head.toString(), 'x');
    socket.destroy();
    s.destroy();
  });

  it('expires when no connection comes, and when the command is cancelled', async () => {
    const channels = new TransferChannels(recordingLogger().logger, 200);
    const ch = await channels.open(new AbortController().signal, who);
    await assert.rejects(ch.accepted, { code: 'TRANSFER_EXPIRED' });
    assert.equal(channels.size, 0);
    assert.equal(dial(channels, ch.service), undefined);
    const ac = new AbortController();
    const other = new TransferChannels(recordingLogger().logger);
    const cancelled = await other.open(ac.signal, who);
    ac.abort();
    await assert.rejects(cancelled.accepted, { code: 'TRANSFER_EXPIRED' });
    assert.equal(dial(other, cancelled.service), undefined);
  });

  it('gives every channel its own name and secret', async () => {
    const channels = new TransferChannels(recordingLogger().logger, 200);
    const a = await channels.open(new AbortController().signal, who);
    const b = await channels.open(new AbortController().signal, who);
    assert.notEqual(a.service, b.service);
    assert.equal(a.secret.equals(b.secret), false);
    assert.equal(channels.size, 2);
    await Promise.allSettled([a.accepted, b.accepted]);
  });
});
