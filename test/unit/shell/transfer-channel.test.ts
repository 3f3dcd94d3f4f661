import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { TransferChannels } from '../../../src/shell/transfer-channel.ts';

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

async function dial(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  await once(s, 'connect');
  return s;
}

/** Resolves how the socket ended: `reset` (ECONNRESET) or `closed`. */
function ending(s: Socket): Promise<'reset' | 'closed'> {
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
    const port = channels.services().find((s) => s.name === ch.service)!.port;
    const s = await dial(port);
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
    assert.deepEqual(channels.services(), [], 'unregistered after its one connection');
    // A second connection finds nothing listening.
    const second = connect(port, '127.0.0.1');
    const [err] = (await once(second, 'error')) as NodeJS.ErrnoException[];
    assert.equal(err.code, 'ECONNREFUSED');
    socket.destroy();
    s.destroy();
  });

  it('resets a wrong secret, logs it, refuses the transfer, and takes no second attempt', async () => {
    const { logger, lines } = recordingLogger();
    const channels = new TransferChannels(logger);
    const ch = await channels.open(new AbortController().signal, who);
    const port = channels.services()[0].port;
    const intruder = await dial(port);
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
    assert.deepEqual(channels.services(), []);
    // The rightful owner, coming second, cannot get in.
    const late = connect(port, '127.0.0.1');
    const [err] = (await once(late, 'error')) as NodeJS.ErrnoException[];
    assert.equal(err.code, 'ECONNREFUSED');
  });

  it('refuses a connection that closes before a whole secret', async () => {
    const channels = new TransferChannels(recordingLogger().logger);
    const ch = await channels.open(new AbortController().signal, who);
    const s = await dial(channels.services()[0].port);
    s.end(ch.secret.subarray(0, 31));
    await assert.rejects(ch.accepted, { code: 'TRANSFER_REFUSED' });
    s.destroy();
  });

  it('expires when no connection comes, and when the command is cancelled', async () => {
    const channels = new TransferChannels(recordingLogger().logger, 200);
    const ch = await channels.open(new AbortController().signal, who);
    const port = channels.services()[0].port;
    await assert.rejects(ch.accepted, { code: 'TRANSFER_EXPIRED' });
    assert.deepEqual(channels.services(), []);
    const s = connect(port, '127.0.0.1');
    const [err] = (await once(s, 'error')) as NodeJS.ErrnoException[];
    assert.equal(err.code, 'ECONNREFUSED');
    const ac = new AbortController();
    const cancelled = await new TransferChannels(recordingLogger().logger).open(ac.signal, who);
    ac.abort();
    await assert.rejects(cancelled.accepted, { code: 'TRANSFER_EXPIRED' });
  });

  it('gives every channel its own name and secret', async () => {
    const channels = new TransferChannels(recordingLogger().logger, 200);
    const a = await channels.open(new AbortController().signal, who);
    const b = await channels.open(new AbortController().signal, who);
    assert.notEqual(a.service, b.service);
    assert.equal(a.secret.equals(b.secret), false);
    assert.equal(channels.services().length, 2);
    await Promise.allSettled([a.accepted, b.accepted]);
  });
});
