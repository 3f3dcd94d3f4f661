/**
 * `POST /v1/sessions` and `/v1/sessions/input` (the agent's /ui/ terminal, docs/ui.md) on a real
 * port: a real command service, real keys and grants, and a test action of the `shell` access
 * class that echoes its input back, so the routes are tested apart from PTYs. Hostile cases: an
 * unsigned, forged or replayed open, input signed by another key or out of place, oversized
 * bodies, a viewer's open; none may end or steer a session it was not signed for.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { z } from 'zod';
import { createHttpApi } from '../../../../src/api/http.ts';
import { mountCommandRoutes } from '../../../../src/api/routes/commands.ts';
import { mountSessionRoutes } from '../../../../src/api/routes/sessions.ts';
import { MAX_INPUT_FRAME_BYTES } from '../../../../src/commands/constants.ts';
import { signCommand } from '../../../../src/commands/envelope.ts';
import { signInput } from '../../../../src/commands/live-input.ts';
import { ActionRegistry, defineAction } from '../../../../src/core/actions.ts';
import { b64u, generateSigner, type Signer } from '../../../../src/crypto/ed25519.ts';
import { type GrantPayload, signGrant } from '../../../../src/mesh/operators.ts';
import { commandNode } from '../../../helpers/commands.ts';

const admin = generateSigner().signer;

/** Says it is ready (as shell.open does), echoes every `d` frame back, and ends at `{t:"e"}`. */
const echo = defineAction({
  name: 'test.session',
  describe: 'echo',
  access: 'shell',
  args: z.object({}),
  handler: async (_args, ctx) => {
    await ctx.emit({ ready: true });
    for await (const f of ctx.input) {
      const frame = f as { t?: string; d?: string };
      if (frame.t === 'e') return 'ended';
      if (frame.t === 'd') await ctx.emit({ o: frame.d });
    }
    return 'input closed';
  },
});

type Line = {
  type: string;
  data?: { o?: string; ready?: boolean };
  result?: unknown;
  error?: { code: string };
};

let base = '';
let self = '';
let stop: () => Promise<void>;
let grant: (role: GrantPayload['role'], extra?: Partial<GrantPayload>) => Signer;
let audit: ReturnType<typeof commandNode>['audit'];

before(async () => {
  const actions = new ActionRegistry();
  actions.register(echo);
  const node = commandNode({ admin, actions });
  self = node.self;
  audit = node.audit;
  grant = (role, extra = {}) => {
    const key = generateSigner().signer;
    node.membership.operators.accept(
      signGrant({ kid: key.kid, pubkey: b64u(key.publicKey), role, at: Date.now(), ...extra }, admin),
    );
    return key;
  };
  const api = createHttpApi(
    { listen: '127.0.0.1:0', maxBodyBytes: 64 * 1024 },
    { logger: pino({ level: 'silent' }) },
  );
  mountCommandRoutes(api, {
    commands: node.service,
    self: () => ({ name: 'n1', peerId: self, networkId: 'plx-0000000000000000', admission: null }),
  });
  mountSessionRoutes(api, { commands: node.service });
  await api.start();
  base = `http://127.0.0.1:${api.address!.port}`;
  stop = () => api.stop();
});
after(() => stop());

/** Opens a session with `envelope`; `next()` reads its reply frames one at a time. */
async function open(envelope: unknown) {
  const res = await fetch(`${base}/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(envelope),
  });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  const next = async (): Promise<Line | undefined> => {
    for (;;) {
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        return JSON.parse(line) as Line;
      }
      const { value, done } = await reader.read();
      if (done) return undefined;
      buf += value;
    }
  };
  return { res, next, close: () => reader.cancel() };
}

async function input(
  id: string,
  frames: unknown[],
): Promise<{ status: number; body: { next?: number; error?: { code: string } } }> {
  const res = await fetch(`${base}/v1/sessions/input`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id, frames }),
  });
  return { status: res.status, body: await res.json() };
}

function liveCommand(key: Signer, action = 'test.session') {
  return signCommand(key, { target: self, action, args: {}, input: { live: true } });
}

describe('session routes', () => {
  it('streams a session: input batches reach it in order, a resent batch once', async () => {
    const { envelope, payload } = liveCommand(admin);
    const s = await open(envelope);
    assert.equal(s.res.status, 200);
    assert.deepEqual((await s.next())?.data, { ready: true });
    const frames = ['a', 'b', 'c'].map((d, i) => signInput(admin, payload.id, i, { t: 'd', d }));
    assert.deepEqual(await input(payload.id, frames.slice(0, 2)), { status: 200, body: { next: 2 } });
    // A browser resends a POST whose connection closed under it: the copy is dropped, not run.
    assert.deepEqual(await input(payload.id, frames.slice(0, 2)), { status: 200, body: { next: 2 } });
    assert.deepEqual(await input(payload.id, frames), { status: 200, body: { next: 3 } });
    const seen = [await s.next(), await s.next(), await s.next()].map((l) => l?.data?.o);
    assert.deepEqual(seen, ['a', 'b', 'c']);
    await input(payload.id, [signInput(admin, payload.id, 3, { t: 'e' })]);
    assert.equal((await s.next())?.result, 'ended');
    // Over: its input has nowhere to go, and its envelope cannot open it again.
    assert.equal((await input(payload.id, [signInput(admin, payload.id, 4, { t: 'p' })])).status, 404);
    const again = await open(envelope);
    assert.equal((await again.next())?.error?.code, 'REPLAY');
  });

  it('refuses an unsigned or forged open, and one not signed as a session', async () => {
    const { envelope } = liveCommand(admin);
    const forged = { ...envelope, sig: b64u(Buffer.alloc(64, 1)) };
    const f = await open(forged);
    assert.equal(f.res.status, 401);
    assert.equal((await f.next())?.error?.code, 'BAD_SIGNATURE');
    const unsigned = await fetch(`${base}/v1/sessions`, { method: 'POST', body: '{"v":1}' });
    assert.equal(unsigned.status, 400);
    const plain = signCommand(admin, { target: self, action: 'test.session', args: {} }).envelope;
    const p = await fetch(`${base}/v1/sessions`, { method: 'POST', body: JSON.stringify(plain) });
    assert.equal(p.status, 400);
    assert.equal((await p.json()).error.code, 'NOT_A_SESSION');
  });

  it('a second open of an open session is a replay, and the first keeps its input', async () => {
    const { envelope, payload } = liveCommand(admin);
    const first = await open(envelope);
    await first.next();
    const second = await open(envelope);
    assert.equal((await second.next())?.error?.code, 'REPLAY');
    await input(payload.id, [signInput(admin, payload.id, 0, { t: 'd', d: 'still mine' })]);
    assert.equal((await first.next())?.data?.o, 'still mine');
    await first.close();
  });

  it('input signed by another key, or out of place, is refused and the session goes on', async () => {
    const owner = grant('operator', { shell: true });
    const other = grant('admin');
    const { envelope, payload } = liveCommand(owner);
    const s = await open(envelope);
    await s.next();
    const intruder = await input(payload.id, [signInput(other, payload.id, 0, { t: 'd', d: 'rm -rf /\r' })]);
    assert.equal(intruder.status, 401);
    assert.equal(intruder.body.error?.code, 'INPUT_TAMPERED');
    const ahead = await input(payload.id, [signInput(owner, payload.id, 5, { t: 'd', d: 'x' })]);
    assert.equal(ahead.body.error?.code, 'INPUT_TAMPERED');
    // The owner's frame signed for another session is not this one's either.
    const moved = await input(payload.id, [signInput(owner, 'another-id', 0, { t: 'd', d: 'x' })]);
    assert.equal(moved.body.error?.code, 'INPUT_TAMPERED');
    const ok = await input(payload.id, [signInput(owner, payload.id, 0, { t: 'd', d: 'hi' })]);
    assert.equal(ok.status, 200);
    assert.equal((await s.next())?.data?.o, 'hi');
    await s.close();
    const unknown = await input('no-such-session', [signInput(owner, 'no-such-session', 0, { t: 'p' })]);
    assert.equal(unknown.body.error?.code, 'SESSION_NOT_FOUND');
    assert.ok(
      audit.list({ limit: 50 }).some((r) => r.code === 'INPUT_TAMPERED'),
      'the forged input is audited',
    );
  });

  it('refuses oversized bodies and batches', async () => {
    const { envelope, payload } = liveCommand(admin);
    const s = await open(envelope);
    await s.next();
    const huge = signInput(admin, payload.id, 0, { t: 'd', d: 'A'.repeat(MAX_INPUT_FRAME_BYTES) });
    assert.equal((await input(payload.id, [huge])).status, 413);
    const many = Array.from({ length: 65 }, (_, i) => signInput(admin, payload.id, i, { t: 'p' }));
    assert.equal((await input(payload.id, many)).body.error?.code, 'BAD_REQUEST');
    const big = await fetch(`${base}/v1/sessions`, { method: 'POST', body: 'x'.repeat(300 * 1024) });
    assert.equal(big.status, 413);
    // None of it reached the session: its first frame is still the next one.
    assert.deepEqual(await input(payload.id, [signInput(admin, payload.id, 0, { t: 'p' })]), {
      status: 200,
      body: { next: 1 },
    });
    await s.close();
  });

  it("refuses a viewer's open, and leaves nothing open for it", async () => {
    const viewer = grant('viewer');
    const { envelope, payload } = liveCommand(viewer);
    const s = await open(envelope);
    assert.equal(s.res.status, 403);
    assert.equal((await s.next())?.error?.code, 'FORBIDDEN_ROLE');
    const r = await input(payload.id, [signInput(viewer, payload.id, 0, { t: 'd', d: 'x' })]);
    assert.equal(r.body.error?.code, 'SESSION_NOT_FOUND');
  });
});
