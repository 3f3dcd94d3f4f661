/** `GET /health`, in-process. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { createHttpApi } from '../../../../src/api/http.ts';
import { mountHealthRoutes } from '../../../../src/api/routes/health.ts';

describe('health route', () => {
  it('answers status, uptime and version, unauthenticated; other methods are refused', async () => {
    const api = createHttpApi(
      { listen: '127.0.0.1:0', maxBodyBytes: 1024 },
      { logger: pino({ level: 'silent' }) },
    );
    mountHealthRoutes(api, { version: '9.9.9', startedAt: Date.now() - 61_000 });
    const res = await api.request('GET', '/health');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { status: 'ok', uptimeS: 61, version: '9.9.9' });
    const post = await api.request('POST', '/health', { body: '{}' });
    assert.equal(post.json<{ error: { code: string } }>().error.code, 'METHOD_NOT_ALLOWED');
  });
});
