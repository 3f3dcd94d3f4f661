/**
 * `fs.write` and `fs.read` with `direct: true` (the fast path of `plexus cp`), driven through the
 * actions as the command service would, with the channel reached in-process as the node's tunnel
 * server reaches it (src/tunnels/in-process.ts): a right secret copies, a wrong one first (another member) ends the
 * channel, refuses the copy and leaves no destination file.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ActionContext, ActionDef } from '../../../src/core/actions.ts';
import { silentLogger } from '../../../src/logging/index.ts';
import { fileActions } from '../../../src/shell/file-actions.ts';
import { TransferChannels } from '../../../src/shell/transfer-channel.ts';
import { connectInProcess, type InProcessEnd } from '../../../src/tunnels/in-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-cp-direct-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const channels = new TransferChannels(silentLogger());
const actions = fileActions({
  policy: { defaultUser: userInfo().username, homeBase: dir },
  channels,
}) as ActionDef[];
const action = (name: string) => actions.find((a) => a.name === name)!;
const me = userInfo().username;

type Offer = { offset: number; service: string; secret: string };

/** Runs an action with `args`; `input` feeds its live input. Resolves once its channel is offered. */
function start(
  name: string,
  args: Record<string, unknown>,
  input: AsyncIterable<unknown> = (async function* () {})(),
) {
  let offered: (o: Offer) => void = () => {};
  const offer = new Promise<Offer>((r) => {
    offered = r;
  });
  const ctx: ActionContext = {
    caller: { kind: 'operator', kid: 'op', role: 'admin' },
    signal: new AbortController().signal,
    emit: async (d) => {
      const ready = (d as { ready?: Offer }).ready;
      if (ready) offered(ready);
    },
    input,
    commandId: 'cmd-1',
  };
  const def = action(name);
  const result = Promise.resolve(def.handler(def.args.parse({ ...args, user: me, direct: true }), ctx));
  result.catch(() => {});
  return { offer, result };
}

async function dial(offer: Offer, secret = Buffer.from(offer.secret, 'base64')): Promise<InProcessEnd> {
  const s = connectInProcess(channels.target(offer.service)!);
  s.on('error', () => {});
  s.write(secret);
  return s;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('the fast path of plexus cp (fs.write / fs.read with direct)', () => {
  it('uploads over the channel, checked against the signed sha256, with mode and mtime', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 7);
    let end: (f: unknown) => void = () => {};
    const input = (async function* () {
      yield { t: 'p' };
      yield await new Promise((r) => {
        end = r;
      });
    })();
    const dst = join(dir, 'up.bin');
    const { offer, result } = start('fs.write', { path: dst, mode: 0o640, mtime: 1_700_000_000 }, input);
    const s = await dial(await offer);
    s.resume();
    s.end(data);
    await once(s, 'close');
    end({ t: 'e', sha256: sha(data) });
    assert.equal(((await result) as { bytes: number }).bytes, data.length);
    assert.ok(readFileSync(dst).equals(data));
    assert.equal(statSync(dst).mode & 0o777, 0o640);
    assert.equal(Math.floor(statSync(dst).mtimeMs / 1000), 1_700_000_000);
    assert.equal(channels.size, 0);
  });

  it('downloads over the channel from an offset, with the sha256 of the whole file', async () => {
    const data = randomBytes(1024 * 1024);
    const src = join(dir, 'down.bin');
    writeFileSync(src, data);
    const { offer, result } = start('fs.read', { path: src, offset: 1000 });
    const s = await dial(await offer);
    const got: Buffer[] = [];
    for await (const c of s) got.push(c as Buffer);
    s.destroy();
    const r = (await result) as { bytes: number; sha256: string };
    assert.ok(Buffer.concat(got).equals(data.subarray(1000)));
    assert.equal(r.sha256, sha(data));
  });

  it('downloads a whole file with its sha256 taken on the way', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 3);
    const src = join(dir, 'whole.bin');
    writeFileSync(src, data);
    const { offer, result } = start('fs.read', { path: src });
    const s = await dial(await offer);
    const got: Buffer[] = [];
    for await (const c of s) got.push(c as Buffer);
    s.destroy();
    const r = (await result) as { bytes: number; sha256: string };
    assert.ok(Buffer.concat(got).equals(data));
    assert.deepEqual([r.bytes, r.sha256], [data.length, sha(data)]);
  });

  it('refuses a download whose file changed during the copy (FILE_CHANGED), signing no sha256', async () => {
    const src = join(dir, 'changing.bin');
    writeFileSync(src, randomBytes(1024 * 1024));
    const { offer, result } = start('fs.read', { path: src });
    const s = await dial(await offer);
    appendFileSync(src, 'more');
    for await (const _ of s);
    s.destroy();
    await assert.rejects(result, (err: { code?: string }) => err.code === 'FILE_CHANGED');
  });

  it('refuses the copy when another connection comes first with a wrong secret: no destination file', async () => {
    const dst = join(dir, 'taken.bin');
    const { offer, result } = start('fs.write', { path: dst, mode: 0o644, mtime: 0 });
    const o = await offer;
    const intruder = await dial(o, randomBytes(32));
    intruder.write('not the operator file');
    await assert.rejects(result, { code: 'TRANSFER_REFUSED' });
    intruder.destroy();
    // The operator's own connection, second, finds the channel gone.
    assert.equal(channels.target(o.service), undefined);
    assert.equal(existsSync(dst), false);
    assert.equal(
      readFileSync(join(dir, '.taken.bin.plexus-part')).length,
      0,
      'nothing of the intruder written',
    );
  });

  it('refuses an upload whose bytes do not hash to the signed sha256, and keeps nothing', async () => {
    const dst = join(dir, 'altered.bin');
    const input = (async function* () {
      await new Promise((r) => setTimeout(r, 100));
      yield { t: 'e', sha256: sha(Buffer.from('what the operator sent')) };
    })();
    const { offer, result } = start('fs.write', { path: dst, mode: 0o644, mtime: 0 }, input);
    const s = await dial(await offer);
    s.end('what a tampering relay sent');
    await assert.rejects(result, { code: 'CHECKSUM_MISMATCH' });
    s.destroy();
    assert.equal(existsSync(dst), false);
  });

  // The sha256 is taken as the bytes go in (finishFile): a resumed file's prefix must be in it.
  const resumed = async (prefixOnDisk: Buffer, data: Buffer) => {
    const dst = join(dir, `resumed-${randomBytes(4).toString('hex')}.bin`);
    writeFileSync(join(dir, `.${dst.split('/').pop()}.plexus-part`), prefixOnDisk);
    let end: (f: unknown) => void = () => {};
    const input = (async function* () {
      yield await new Promise((r) => {
        end = r;
      });
    })();
    const { offer, result } = start('fs.write', { path: dst, mode: 0o600, mtime: 0, resume: true }, input);
    const o = await offer;
    assert.equal(o.offset, prefixOnDisk.length);
    const s = await dial(o);
    s.resume();
    s.end(data.subarray(o.offset));
    await once(s, 'close');
    end({ t: 'e', sha256: sha(data) });
    return { dst, result };
  };

  it("resumes an upload: the partial file's prefix counts in its sha256", async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const { dst, result } = await resumed(data.subarray(0, 700_000), data);
    assert.equal(((await result) as { offset: number }).offset, 700_000);
    assert.ok(readFileSync(dst).equals(data));
  });

  it('refuses a resumed upload whose partial prefix differs from the source, and keeps nothing', async () => {
    const data = randomBytes(1024 * 1024);
    const { dst, result } = await resumed(randomBytes(300_000), data);
    await assert.rejects(result, { code: 'CHECKSUM_MISMATCH' });
    assert.equal(existsSync(dst), false);
  });
});
