/**
 * The CLI end of `plexus cp`'s fast path (src/cli/cp-direct.ts), against a stand-in for the local
 * agent's SOCKS5 proxy on loopback that plays the node's channel: a download lands whole with
 * its sha256, a full local disk and a cut connection are one-line errors.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { receiveRaw } from '../../../src/cli/cp-direct.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-cp-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const secret = randomBytes(32);
const offer = { offset: 0, service: `cp-${'a'.repeat(24)}`, secret: secret.toString('base64') };

/**
 * A SOCKS5 proxy that answers one CONNECT, checks the channel's secret, then `serve`s the
 * socket as the node would.
 */
async function proxy(serve: (s: Socket) => void): Promise<Server & { port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let buf = Buffer.alloc(0);
    let stage = 0;
    s.on('error', () => {});
    s.on('data', function onData(c: Buffer) {
      buf = Buffer.concat([buf, c]);
      if (stage === 0 && buf.length >= 3) {
        buf = buf.subarray(3);
        stage = 1;
        s.write(Buffer.from([5, 0]));
      }
      if (stage === 1 && buf.length >= 5 && buf.length >= 7 + buf[4]) {
        buf = buf.subarray(7 + buf[4]);
        stage = 2;
        s.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
      }
      if (stage === 2 && buf.length >= 32) {
        assert.ok(buf.subarray(0, 32).equals(secret), 'the CLI presents the secret first');
        s.off('data', onData);
        serve(s);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(server, { port: (server.address() as { port: number }).port });
}

const bar = { add() {} };

describe('plexus cp, the CLI end of a direct download', () => {
  it('writes what the node sends and hashes it on the way', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 11);
    const server = await proxy((s) => s.end(data));
    const file = join(dir, 'got.bin');
    const fd = await open(file, 'w');
    const h = createHash('sha256');
    await receiveRaw({ host: '127.0.0.1', port: server.port }, 'n2', offer, fd, file, h, bar);
    await fd.close();
    server.close();
    assert.ok(readFileSync(file).equals(data));
    assert.equal(h.digest('hex'), createHash('sha256').update(data).digest('hex'));
  });

  it('says so in one line when the local disk is full', async () => {
    const server = await proxy((s) => s.end(randomBytes(256 * 1024)));
    const fd = await open('/dev/full', 'w');
    await assert.rejects(
      receiveRaw(
        { host: '127.0.0.1', port: server.port },
        'n2',
        offer,
        fd,
        'big.bin',
        createHash('sha256'),
        bar,
      ),
      (err: Error) => /^big\.bin: no space left on this disk$/.test(err.message),
    );
    await fd.close();
    server.close();
  });

  it('fails a copy whose connection is cut before its end', async () => {
    const server = await proxy((s) => {
      s.write(randomBytes(100_000));
      setTimeout(() => s.resetAndDestroy(), 50);
    });
    const file = join(dir, 'cut.bin');
    const fd = await open(file, 'w');
    await assert.rejects(
      receiveRaw({ host: '127.0.0.1', port: server.port }, 'n2', offer, fd, file, createHash('sha256'), bar),
      (err: Error) => err.message.startsWith(`${file}: the copy broke`),
    );
    await fd.close();
    server.close();
    assert.ok(existsSync(file));
  });
});
