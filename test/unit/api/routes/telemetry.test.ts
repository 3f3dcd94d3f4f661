/**
 * `GET /v1/telemetry` and `GET /metrics`, in-process. The history route runs the real
 * `telemetry.history` action over a real history store; only the telemetry service around it
 * (which needs a mesh) is left out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { createHttpApi } from '../../../../src/api/http.ts';
import { mountTelemetryRoutes } from '../../../../src/api/routes/telemetry.ts';
import { ActionRegistry } from '../../../../src/core/actions.ts';
import {
  TelemetryHistory,
  type TelemetryService,
  telemetryActions,
} from '../../../../src/telemetry/index.ts';
import { sampleRecord } from '../../../helpers/telemetry.ts';

function setup() {
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
  const api = createHttpApi(
    { listen: '127.0.0.1:0', maxBodyBytes: 1024 },
    { logger: pino({ level: 'silent' }) },
  );
  mountTelemetryRoutes(api, {
    actions,
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'plexus_up 1\n' }),
  });
  return { api, asked, t0 };
}

const codeOf = (res: { json<T>(): T }) => res.json<{ error: { code: string } }>().error.code;

describe('telemetry routes', () => {
  it("answers a node's history; since may be epoch seconds, epoch ms or an ISO date", async () => {
    const { api, asked, t0 } = setup();
    const res = await api.request('GET', `/v1/telemetry?node=web-1&since=${t0}`);
    assert.equal(res.status, 200);
    const body = res.json<{ node: string; points: unknown[] }>();
    assert.equal(body.node, 'web-1');
    assert.equal(body.points.length, 6);
    const s = Math.floor(t0 / 1000);
    await api.request('GET', `/v1/telemetry?node=web-1&since=${s}`);
    await api.request('GET', `/v1/telemetry?node=web-1&since=${new Date(s * 1000).toISOString()}`);
    assert.deepEqual(asked, [t0, s * 1000, s * 1000]);
  });

  it("a missing node or a bad since is 400 with its code; an unknown node is the action's 404", async () => {
    const { api, asked } = setup();
    const missing = await api.request('GET', '/v1/telemetry?since=1');
    assert.deepEqual([missing.status, codeOf(missing)], [400, 'MISSING_NODE']);
    const since = await api.request('GET', '/v1/telemetry?node=web-1&since=yesterday');
    assert.deepEqual([since.status, codeOf(since)], [400, 'BAD_SINCE']);
    const resolution = await api.request('GET', '/v1/telemetry?node=web-1&resolution=weekly');
    assert.deepEqual([resolution.status, codeOf(resolution)], [400, 'INVALID_ARGUMENT']);
    assert.deepEqual(asked, [], 'no bad request reaches the history');
    const unknown = await api.request('GET', '/v1/telemetry?node=nobody');
    assert.deepEqual([unknown.status, codeOf(unknown)], [404, 'NO_HISTORY']);
  });

  it('/metrics answers the exposition with its own content type', async () => {
    const { api } = setup();
    const res = await api.request('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4');
    assert.equal(res.text(), 'plexus_up 1\n');
  });
});
