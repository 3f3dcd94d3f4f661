/**
 * `GET /v1/telemetry` and `GET /metrics`, in-process. The history route runs the real
 * `telemetry.history` action over a real history store, behind the real command service (operator
 * keys, signatures, replay); only the telemetry service around it (which needs a mesh) is left
 * out. Issue 12: the history is served only to a signed request, /metrics only with its token.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { createHttpApi } from '../../../../src/api/http.ts';
import { mountTelemetryRoutes } from '../../../../src/api/routes/telemetry.ts';
import { type Envelope, signCommand } from '../../../../src/commands/envelope.ts';
import { ActionRegistry } from '../../../../src/core/actions.ts';
import { b64u, generateSigner, type Signer } from '../../../../src/crypto/ed25519.ts';
import { signGrant } from '../../../../src/mesh/operators.ts';
import { peerIdOf } from '../../../../src/mesh/peer-ids.ts';
import {
  TelemetryHistory,
  type TelemetryService,
  telemetryActions,
} from '../../../../src/telemetry/index.ts';
import { commandNode } from '../../../helpers/commands.ts';
import { sampleRecord } from '../../../helpers/telemetry.ts';

const admin = generateSigner().signer;
const METRICS_TOKEN = 'metrics-token-0123456789';

/** `Authorization: Plexus <base64url(JSON(envelope))>`, as docs/telemetry.md describes it. */
const plexusAuth = (envelope: Envelope) =>
  `Plexus ${Buffer.from(JSON.stringify(envelope)).toString('base64url')}`;

function setup(opts: { metricsToken?: string } = { metricsToken: METRICS_TOKEN }) {
  const history = new TelemetryHistory({ intervalMs: 10_000 });
  const t0 = Date.now() - 60_000;
  for (let i = 0; i < 6; i++) history.add(sampleRecord({ seq: i + 1, ts: t0 + i * 10_000 }) as never);
  const asked: number[] = [];
  const svc = {
    history: {
      query: (node: string, since: number, resolution?: 'fine' | 'coarse') => {
        asked.push(since);
        return history.query(node, since, resolution);
      },
    },
  } as unknown as TelemetryService;
  const actions = new ActionRegistry();
  actions.register(...telemetryActions(svc));
  const { self, audit, service, membership } = commandNode({ admin, actions });
  const viewer = generateSigner().signer;
  membership.operators.accept(
    signGrant({ kid: viewer.kid, pubkey: b64u(viewer.publicKey), role: 'viewer', at: Date.now() }, admin),
  );
  const api = createHttpApi(
    { listen: '127.0.0.1:0', maxBodyBytes: 1024 },
    { logger: pino({ level: 'silent' }) },
  );
  mountTelemetryRoutes(api, {
    commands: service,
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'plexus_up 1\n' }),
    metricsToken: opts.metricsToken,
  });
  /** A GET signed by `key` for `args` (default: the query's own args). */
  const signedGet = (query: string, args: Record<string, unknown>, key: Signer = viewer, target = self) =>
    api.request('GET', `/v1/telemetry?${query}`, {
      headers: {
        authorization: plexusAuth(signCommand(key, { target, action: 'telemetry.history', args }).envelope),
      },
    });
  return { api, asked, t0, audit, viewer, self, signedGet };
}

const codeOf = (res: { json<T>(): T }) => res.json<{ error: { code: string } }>().error.code;

describe('telemetry routes', () => {
  it('an unsigned GET /v1/telemetry is 401 UNAUTHENTICATED with a hint, and reads nothing', async () => {
    const { api, asked } = setup();
    const res = await api.request('GET', '/v1/telemetry?node=web-1');
    assert.equal(res.status, 401);
    const err = res.json<{ error: { code: string; message: string } }>().error;
    assert.equal(err.code, 'UNAUTHENTICATED');
    assert.match(err.message, /telemetry\.history/);
    for (const authorization of ['Bearer x', 'Plexus', 'Plexus !!!', `Plexus ${'A'.repeat(10)}`]) {
      const bad = await api.request('GET', '/v1/telemetry?node=web-1', { headers: { authorization } });
      assert.ok([400, 401].includes(bad.status), `${authorization}: ${bad.status}`);
    }
    assert.deepEqual(asked, []);
  });

  it("a viewer-signed GET answers a node's history; since may be epoch seconds, epoch ms or an ISO date", async () => {
    const { asked, t0, signedGet, audit } = setup();
    const res = await signedGet(`node=web-1&since=${t0}`, { node: 'web-1', since: t0 });
    assert.equal(res.status, 200);
    const body = res.json<{ node: string; points: unknown[] }>();
    assert.equal(body.node, 'web-1');
    assert.equal(body.points.length, 6);
    const s = Math.floor(t0 / 1000);
    assert.equal((await signedGet(`node=web-1&since=${s}`, { node: 'web-1', since: s * 1000 })).status, 200);
    const iso = new Date(s * 1000).toISOString();
    assert.equal(
      (await signedGet(`node=web-1&since=${iso}`, { node: 'web-1', since: s * 1000 })).status,
      200,
    );
    assert.deepEqual(asked, [t0, s * 1000, s * 1000]);
    assert.deepEqual(
      audit.list().map((r) => [r.verdict, r.action]),
      Array(3).fill(['accepted', 'telemetry.history']),
    );
  });

  it('a replayed, forged, unknown-key, other-target or other-args signature is refused', async () => {
    const { api, asked, viewer, self, signedGet } = setup();
    const { envelope } = signCommand(viewer, {
      target: self,
      action: 'telemetry.history',
      args: { node: 'web-1' },
    });
    const once = await api.request('GET', '/v1/telemetry?node=web-1', {
      headers: { authorization: plexusAuth(envelope) },
    });
    assert.equal(once.status, 200);
    const replay = await api.request('GET', '/v1/telemetry?node=web-1', {
      headers: { authorization: plexusAuth(envelope) },
    });
    assert.deepEqual([replay.status, codeOf(replay)], [403, 'REPLAY']);

    const fresh = signCommand(viewer, {
      target: self,
      action: 'telemetry.history',
      args: { node: 'web-1' },
    }).envelope;
    const forged = { ...fresh, sig: b64u(Buffer.alloc(64, 7)) };
    const f = await api.request('GET', '/v1/telemetry?node=web-1', {
      headers: { authorization: plexusAuth(forged) },
    });
    assert.deepEqual([f.status, codeOf(f)], [401, 'BAD_SIGNATURE']);

    const stranger = await signedGet('node=web-1', { node: 'web-1' }, generateSigner().signer);
    assert.deepEqual([stranger.status, codeOf(stranger)], [401, 'UNKNOWN_KEY']);
    const elsewhere = await signedGet(
      'node=web-1',
      { node: 'web-1' },
      viewer,
      peerIdOf(generateSigner().signer.publicKey),
    );
    assert.deepEqual([elsewhere.status, codeOf(elsewhere)], [403, 'WRONG_TARGET']);
    // A signature for web-1's history does not open web-2's, nor another action.
    const otherArgs = await signedGet('node=web-2', { node: 'web-1' });
    assert.equal(otherArgs.status, 400);
    assert.equal(codeOf(otherArgs), 'REQUEST_MISMATCH');
    const otherAction = await api.request('GET', '/v1/telemetry?node=web-1', {
      headers: {
        authorization: plexusAuth(
          signCommand(viewer, { target: self, action: 'audit.list', args: { node: 'web-1' } }).envelope,
        ),
      },
    });
    assert.equal(codeOf(otherAction), 'REQUEST_MISMATCH');
    assert.equal(asked.length, 1, 'only the first, genuine request read the history');
  });

  it("a missing node or a bad since is 400 with its code; an unknown node is the action's 404", async () => {
    const { asked, signedGet } = setup();
    const missing = await signedGet('since=1', {});
    assert.deepEqual([missing.status, codeOf(missing)], [400, 'MISSING_NODE']);
    const since = await signedGet('node=web-1&since=yesterday', { node: 'web-1' });
    assert.deepEqual([since.status, codeOf(since)], [400, 'BAD_SINCE']);
    const resolution = await signedGet('node=web-1&resolution=weekly', {
      node: 'web-1',
      resolution: 'weekly',
    });
    assert.deepEqual([resolution.status, codeOf(resolution)], [400, 'INVALID_ARGUMENT']);
    assert.deepEqual(asked, [], 'no bad request reaches the history');
    const unknown = await signedGet('node=nobody', { node: 'nobody' });
    assert.deepEqual([unknown.status, codeOf(unknown)], [404, 'NO_HISTORY']);
  });

  it('/metrics needs its bearer token: none or a wrong one is 401, the right one answers the exposition', async () => {
    const { api } = setup();
    const none = await api.request('GET', '/metrics');
    assert.deepEqual([none.status, codeOf(none)], [401, 'UNAUTHENTICATED']);
    for (const authorization of [
      'Bearer wrong-token-0123456789',
      `Bearer ${METRICS_TOKEN}x`,
      METRICS_TOKEN,
      'Basic eDp5',
    ]) {
      const wrong = await api.request('GET', '/metrics', { headers: { authorization } });
      assert.deepEqual([wrong.status, codeOf(wrong)], [401, 'UNAUTHENTICATED'], authorization);
    }
    const res = await api.request('GET', '/metrics', {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4');
    assert.equal(res.text(), 'plexus_up 1\n');
  });

  it('/metrics without a configured token is disabled: 404 naming api.metricsToken, whatever is sent', async () => {
    const { api } = setup({});
    for (const headers of [{}, { authorization: 'Bearer anything-at-all-000' }] as Record<string, string>[]) {
      const res = await api.request('GET', '/metrics', { headers });
      assert.deepEqual([res.status, codeOf(res)], [404, 'METRICS_DISABLED']);
      assert.match(res.json<{ error: { message: string } }>().error.message, /api\.metricsToken/);
    }
  });
});
