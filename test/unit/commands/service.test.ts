import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { inputHasher, signCommand, verifyFrame } from '../../../src/commands/envelope.ts';
import type { FrameSink } from '../../../src/commands/service.ts';
import { ActionRegistry, defineAction } from '../../../src/core/actions.ts';
import type { Frame } from '../../../src/core/frames.ts';
import { b64u, generateSigner, type Signer } from '../../../src/crypto/ed25519.ts';
import { type GrantPayload, signGrant } from '../../../src/mesh/operators.ts';
import { peerIdOf } from '../../../src/mesh/peer-ids.ts';
import { commandNode } from '../../helpers/commands.ts';

const admin = generateSigner().signer;

function setup() {
  const ran: string[] = [];
  const actions = new ActionRegistry();
  const app = z.object({ app: z.string() });
  actions.register(
    defineAction({
      name: 'test.read',
      describe: 'read',
      access: 'read',
      args: z.object({}),
      handler: async () => {
        ran.push('read');
        return 'ok';
      },
    }),
    defineAction({
      name: 'test.write',
      describe: 'write an app',
      access: 'write',
      args: app,
      tenantOf: (a) => (a.app.startsWith('blue-') ? 'blue' : a.app.startsWith('red-') ? 'red' : undefined),
      handler: async (a) => {
        ran.push(`write ${a.app}`);
        return 'ok';
      },
    }),
    defineAction({
      name: 'test.read-app',
      describe: "read an app's logs",
      access: 'read',
      args: app,
      tenantOf: (a) => (a.app.startsWith('blue-') ? 'blue' : 'red'),
      handler: async () => 'logs',
    }),
    defineAction({
      name: 'test.exec',
      describe: 'exec',
      access: 'exec',
      args: z.object({}),
      handler: async () => {
        ran.push('exec');
        return 'ok';
      },
    }),
    defineAction({
      name: 'test.upload',
      describe: 'reads all input',
      access: 'write',
      args: z.object({}),
      // Like apps.deploy: reads chunks by hand and stops at {end: true}, never waiting for EOF.
      handler: async (_a, ctx) => {
        const frames = ctx.input[Symbol.asyncIterator]();
        let body = '';
        for (;;) {
          const next = await frames.next();
          if (next.done) throw new Error('no end marker');
          const f = next.value as { chunk?: string; end?: boolean };
          if (f.end) break;
          body += f.chunk;
        }
        ran.push(`upload ${body}`);
        return body;
      },
    }),
  );
  const relayed: string[] = [];
  const { membership, node, self, audit, service } = commandNode({
    admin,
    actions,
    isMember: () => true,
    relay: async (target, _env, _input, sink) => {
      relayed.push(target);
      await sink({ type: 'result', result: 'relayed' });
    },
  });
  const grant = (role: GrantPayload['role'], extra: Partial<GrantPayload> = {}): Signer => {
    const key = generateSigner().signer;
    membership.operators.accept(
      signGrant({ kid: key.kid, pubkey: b64u(key.publicKey), role, at: Date.now(), ...extra }, admin),
    );
    return key;
  };
  async function run(
    env: unknown,
    opts: { via?: 'http' | 'mesh'; input?: unknown[] } = {},
  ): Promise<Frame[]> {
    const frames: Frame[] = [];
    const sink: FrameSink = async (f) => {
      frames.push(f);
    };
    const input = (async function* () {
      for (const f of opts.input ?? []) yield f;
    })();
    await service.handle(env, input, sink, { via: opts.via ?? 'http', signal: new AbortController().signal });
    return frames;
  }
  return { self, node, ran, relayed, audit, grant, run };
}

const lastCode = (frames: Frame[]) => {
  const f = frames.at(-1)!;
  return f.type === 'error' ? f.error.code : f.type;
};

describe('command service', () => {
  it('runs a command for this node and signs every reply frame', async () => {
    const t = setup();
    const { envelope, payload } = signCommand(admin, { target: t.self, action: 'test.read' });
    const frames = await t.run(envelope);
    assert.deepEqual(t.ran, ['read']);
    const f = verifyFrame(t.node.publicKey, t.self, payload.id, 0, frames[0]);
    assert.deepEqual(f, { type: 'result', result: 'ok' });
    const row = t.audit.list().at(-1)!;
    assert.deepEqual(
      [row.verdict, row.id, row.kid, row.action, row.outcome],
      ['accepted', payload.id, admin.kid, 'test.read', 'ok'],
    );
  });

  it('refuses an envelope for another node that arrives from a relay (wrong target)', async () => {
    const t = setup();
    const other = peerIdOf(generateSigner().signer.publicKey);
    const { envelope } = signCommand(admin, { target: other, action: 'test.exec' });
    assert.equal(lastCode(await t.run(envelope, { via: 'mesh' })), 'WRONG_TARGET');
    assert.deepEqual(t.ran, []);
    assert.deepEqual(t.relayed, [], 'a node never relays what a relay sent it');
    assert.equal(t.audit.list().at(-1)?.code, 'WRONG_TARGET');
    // At the door (HTTP), the same envelope is relayed to its target instead.
    assert.equal(
      lastCode(await t.run(signCommand(admin, { target: other, action: 'test.exec' }).envelope)),
      'result',
    );
    assert.deepEqual(t.relayed, [other]);
  });

  it('roles: viewer reads only; operator writes; exec needs admin or an exec grant', async () => {
    const t = setup();
    const viewer = t.grant('viewer');
    const op = t.grant('operator');
    const execOp = t.grant('operator', { exec: true });
    const send = (k: Signer, action: string, args = {}) =>
      t.run(signCommand(k, { target: t.self, action, args }).envelope).then(lastCode);
    assert.equal(await send(viewer, 'test.read'), 'result');
    assert.equal(await send(viewer, 'test.write', { app: 'x' }), 'FORBIDDEN_ROLE');
    assert.equal(await send(op, 'test.write', { app: 'x' }), 'result');
    assert.equal(await send(op, 'test.exec'), 'FORBIDDEN_ROLE');
    assert.equal(await send(execOp, 'test.exec'), 'result');
    assert.equal(await send(admin, 'test.exec'), 'result');
    assert.deepEqual(t.ran, ['read', 'write x', 'exec', 'exec']);
  });

  it('tenants: a tenant operator only touches apps of its tenant', async () => {
    const t = setup();
    const blue = t.grant('operator', { tenant: 'blue' });
    const send = (app: string) =>
      t
        .run(signCommand(blue, { target: t.self, action: 'test.write', args: { app } }).envelope)
        .then(lastCode);
    assert.equal(await send('blue-web'), 'result');
    assert.equal(await send('red-web'), 'FORBIDDEN_TENANT');
    assert.deepEqual(t.ran, ['write blue-web']);
    // A new app (no tenant yet) may be created; node-level changes (no tenantOf) may not.
    assert.equal(await send('new-app'), 'result');
    const blueExec = t.grant('operator', { tenant: 'blue', exec: true });
    assert.equal(
      lastCode(await t.run(signCommand(blueExec, { target: t.self, action: 'test.exec' }).envelope)),
      'FORBIDDEN_TENANT',
    );
    // Reads: the node's own (no tenant) and the tenant's apps, not another tenant's app.
    const read = (k: Signer, app: string) =>
      t
        .run(signCommand(k, { target: t.self, action: 'test.read-app', args: { app } }).envelope)
        .then(lastCode);
    assert.equal(await read(blue, 'blue-web'), 'result');
    assert.equal(await read(blue, 'red-web'), 'FORBIDDEN_TENANT');
    assert.equal(await read(t.grant('viewer', { tenant: 'blue' }), 'red-web'), 'FORBIDDEN_TENANT');
    assert.equal(await read(t.grant('viewer'), 'red-web'), 'result');
    assert.equal(
      lastCode(await t.run(signCommand(blue, { target: t.self, action: 'test.read' }).envelope)),
      'result',
    );
  });

  it('expired grants, unknown keys and replays are refused', async () => {
    const t = setup();
    const expired = t.grant('admin', { exp: Math.floor(Date.now() / 1000) - 1 });
    assert.equal(
      lastCode(await t.run(signCommand(expired, { target: t.self, action: 'test.read' }).envelope)),
      'KEY_EXPIRED',
    );
    const stranger = generateSigner().signer;
    assert.equal(
      lastCode(await t.run(signCommand(stranger, { target: t.self, action: 'test.read' }).envelope)),
      'UNKNOWN_KEY',
    );
    const { envelope } = signCommand(admin, { target: t.self, action: 'test.read' });
    assert.equal(lastCode(await t.run(envelope)), 'result');
    assert.equal(lastCode(await t.run(envelope, { via: 'mesh' })), 'REPLAY');
    assert.deepEqual(t.ran, ['read']);
  });

  it('input must match the count and digest the operator signed; none may be injected', async () => {
    const t = setup();
    const chunks = [{ chunk: 'aGVsbG8=' }, { end: true }];
    const h = inputHasher();
    for (const c of chunks) h.update(c);
    const digest = h.digest();
    const signed = () =>
      signCommand(admin, { target: t.self, action: 'test.upload', input: digest }).envelope;
    assert.equal(lastCode(await t.run(signed(), { input: chunks })), 'result');
    // Swapped bytes: the action never gets the last frame, even though it stops at its end marker.
    assert.equal(
      lastCode(await t.run(signed(), { input: [{ chunk: 'ZXZpbA==' }, { end: true }] })),
      'INPUT_TAMPERED',
    );
    // Dropped frames: the end marker alone never reaches the action.
    assert.equal(lastCode(await t.run(signed(), { input: [{ end: true }] })), 'INPUT_TAMPERED');
    // A forged extra frame in place of the real end.
    assert.equal(
      lastCode(await t.run(signed(), { input: [{ chunk: 'aGVsbG8=' }, { chunk: 'ZXZpbA==' }] })),
      'INPUT_TAMPERED',
    );
    // Appended frames are never read: the action sees exactly what was signed.
    assert.equal(lastCode(await t.run(signed(), { input: [...chunks, { chunk: 'ZXZpbA==' }] })), 'result');
    // Signed without input: any input is an injection.
    const unsigned = signCommand(admin, { target: t.self, action: 'test.upload' }).envelope;
    assert.equal(lastCode(await t.run(unsigned, { input: chunks })), 'INPUT_TAMPERED');
    assert.deepEqual(t.ran, ['upload aGVsbG8=', 'upload aGVsbG8=']);
  });
});
