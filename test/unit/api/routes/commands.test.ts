/**
 * `POST /v1/commands` and `GET /v1/node`, in-process: a real command service with real keys,
 * a real audit log (SQLite :memory:) and the real `node.exec` action. Only the mesh is missing,
 * so relaying to another member fails as an unreachable peer would.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { createHttpApi } from '../../../../src/api/http.ts';
import { mountCommandRoutes } from '../../../../src/api/routes/commands.ts';
import { MAX_ENVELOPE_BYTES, MAX_INPUT_BYTES } from '../../../../src/commands/constants.ts';
import { signCommand, verifyFrame } from '../../../../src/commands/envelope.ts';
import { TargetUnreachableError } from '../../../../src/commands/errors.ts';
import { execAction } from '../../../../src/commands/exec.ts';
import { ActionRegistry } from '../../../../src/core/actions.ts';
import type { Frame } from '../../../../src/core/frames.ts';
import { generateSigner } from '../../../../src/crypto/ed25519.ts';
import { peerIdOf } from '../../../../src/mesh/peer-ids.ts';
import { commandNode } from '../../../helpers/commands.ts';

const admin = generateSigner().signer;

function setup() {
  const other = peerIdOf(generateSigner().signer.publicKey);
  const actions = new ActionRegistry();
  actions.register(execAction());
  const { node, self, audit, service } = commandNode({
    admin,
    actions,
    isMember: (peerId) => peerId === other,
    relay: async () => {
      throw new TargetUnreachableError('no mesh in this test');
    },
  });
  const api = createHttpApi(
    { listen: '127.0.0.1:0', maxBodyBytes: 1024 },
    { logger: pino({ level: 'silent' }) },
  );
  mountCommandRoutes(api, {
    commands: service,
    self: () => ({ name: 'n1', peerId: self, networkId: 'plx-0000000000000000', admission: null }),
  });
  const post = (body: string, headers: Record<string, string> = {}) =>
    api.request('POST', '/v1/commands', {
      headers: { 'content-type': 'application/x-ndjson', ...headers },
      body,
    });
  return { api, audit, node, self, other, post };
}

const lastError = (frames: Frame[]) => {
  const f = frames.at(-1);
  return f?.type === 'error' ? f.error.code : f?.type;
};

describe('command routes', () => {
  it('GET /v1/node names this node, its network and its admission', async () => {
    const t = setup();
    assert.deepEqual((await t.api.request('GET', '/v1/node')).json(), {
      name: 'n1',
      peerId: t.self,
      networkId: 'plx-0000000000000000',
      admission: null,
    });
  });

  it('runs a signed command and streams its signed frames as NDJSON', async () => {
    const t = setup();
    const { envelope, payload } = signCommand(admin, {
      target: t.self,
      action: 'node.exec',
      args: { cmd: process.execPath, args: ['-e', 'process.stdout.write("hi")'] },
    });
    const res = await t.post(`${JSON.stringify(envelope)}\n`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/x-ndjson');
    const frames = res.ndjson().map((f, seq) => verifyFrame(t.node.publicKey, t.self, payload.id, seq, f));
    assert.deepEqual(frames[0], { type: 'data', data: { stream: 'stdout', data: 'hi' } });
    const result = frames.at(-1);
    assert.equal(result?.type, 'result');
    assert.equal((result as { result: { exitCode: number } }).result.exitCode, 0);
    assert.equal(t.audit.list().at(-1)?.outcome, 'ok');
  });

  it('malformed JSON, a non-envelope and an empty body get 400 and an audit entry; the connection is dropped', async () => {
    const t = setup();
    const bad = await t.post('{"v":1,\n');
    assert.equal(bad.status, 400);
    assert.equal(bad.json<{ error: { code: string } }>().error.code, 'BAD_JSON');
    assert.equal(bad.headers.connection, 'close');
    const notEnvelope = await t.post('{"hello":"world"}\n');
    assert.equal(notEnvelope.status, 400);
    assert.equal(lastError(notEnvelope.ndjson()), 'BAD_ENVELOPE');
    const empty = await t.post('');
    assert.equal(empty.status, 400);
    assert.equal(empty.json<{ error: { code: string } }>().error.code, 'BAD_REQUEST');
    assert.deepEqual(
      t.audit.list().map((r) => [r.verdict, r.code, r.via]),
      [
        ['refused', 'BAD_JSON', 'http'],
        ['refused', 'BAD_ENVELOPE', 'http'],
        ['refused', 'BAD_REQUEST', 'http'],
      ],
    );
  });

  it('an oversized body or envelope line gets 413 and an audit entry (folded: same source, same code)', async () => {
    const t = setup();
    const declared = await t.post('{}\n', {
      'content-length': String(MAX_ENVELOPE_BYTES + MAX_INPUT_BYTES + 1),
    });
    assert.equal(declared.status, 413);
    assert.equal(declared.json<{ error: { code: string } }>().error.code, 'BODY_TOO_LARGE');
    const line = await t.post(`${JSON.stringify({ pad: 'x'.repeat(MAX_ENVELOPE_BYTES) })}\n`);
    assert.equal(line.status, 413);
    assert.equal(line.json<{ error: { code: string } }>().error.code, 'BODY_TOO_LARGE');
    // Two refusals from one source with one code: one audit row counting both (issue 12).
    assert.deepEqual(
      t.audit.list().map((r) => [r.verdict, r.code, r.count, r.source]),
      [['refused', 'BODY_TOO_LARGE', 2, 'in-process']],
    );
  });

  it('refusals by the service set the status: a stranger is 401, an unreachable member 503', async () => {
    const t = setup();
    const stranger = generateSigner().signer;
    const unknownKey = await t.post(
      `${JSON.stringify(signCommand(stranger, { target: t.self, action: 'node.exec', args: { cmd: 'true' } }).envelope)}\n`,
    );
    assert.equal(unknownKey.status, 401);
    assert.equal(lastError(unknownKey.ndjson()), 'UNKNOWN_KEY');
    const relayed = await t.post(
      `${JSON.stringify(signCommand(admin, { target: t.other, action: 'node.exec', args: { cmd: 'true' } }).envelope)}\n`,
    );
    assert.equal(relayed.status, 503);
    assert.equal(lastError(relayed.ndjson()), 'PEER_UNREACHABLE');
  });
});
