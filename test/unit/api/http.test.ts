/**
 * The router, driven in-process through `request()` (no port): unknown routes and methods,
 * body limits and deadlines, JSON errors, streamed responses, and an unexpected error that
 * becomes a logged 500 without its internals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadSinceError } from '../../../src/api/errors.ts';
import { createHttpApi, STATUS_BY_KIND } from '../../../src/api/http.ts';
import { PlexusError } from '../../../src/core/errors.ts';
import { writeJsonLine } from '../../../src/core/ndjson.ts';
import { sinkLogger } from '../../helpers/telemetry.ts';

function setup(init: { maxBodyBytes?: number; bodyTimeoutMs?: number } = {}) {
  const { logger, lines } = sinkLogger();
  const api = createHttpApi(
    { listen: '127.0.0.1:0', maxBodyBytes: init.maxBodyBytes ?? 64, bodyTimeoutMs: init.bodyTimeoutMs },
    { logger },
  );
  return { api, lines };
}

/** A request body that sends `first` and then never another byte. */
async function* stalled(first: string) {
  yield first;
  await new Promise(() => {});
}

describe('http router', () => {
  it('answers a returned value as JSON, with path parameters decoded and the query parsed', async () => {
    const { api } = setup();
    api.route('GET', '/v1/apps/:app', (req) => ({ app: req.params.app, n: req.query.get('n') }));
    const res = await api.request('GET', '/v1/apps/my%20app?n=3');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^application\/json/);
    assert.deepEqual(res.json(), { app: 'my app', n: '3' });
  });

  it('an unknown path is 404 NOT_FOUND; a known path with another method is METHOD_NOT_ALLOWED', async () => {
    const { api } = setup();
    api.route('GET', '/health', () => ({}));
    const missing = await api.request('GET', '/nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.json<{ error: { code: string } }>().error.code, 'NOT_FOUND');
    const wrong = await api.request('DELETE', '/health');
    // METHOD_NOT_ALLOWED is an `invalid` request: 400, as the agent has always answered.
    assert.equal(wrong.status, 400);
    const body = wrong.json<{ error: { code: string; message: string } }>();
    assert.equal(body.error.code, 'METHOD_NOT_ALLOWED');
    assert.equal(typeof body.error.message, 'string');
  });

  it('a declared body over the limit is refused with 413 before it is read', async () => {
    const { api } = setup({ maxBodyBytes: 16 });
    let read = false;
    api.route('POST', '/echo', async (req) => {
      const body = await req.body();
      read = true;
      return { bytes: body.length };
    });
    const ok = await api.request('POST', '/echo', { body: 'x'.repeat(16) });
    assert.deepEqual([ok.status, ok.json()], [200, { bytes: 16 }]);
    read = false;
    const big = await api.request('POST', '/echo', { body: 'x'.repeat(17) });
    assert.equal(big.status, 413);
    assert.equal(big.json<{ error: { code: string } }>().error.code, 'BODY_TOO_LARGE');
    assert.equal(read, false);
  });

  it('an undeclared body that grows over the limit, or stalls past the deadline, loses its connection', async () => {
    const { api } = setup({ maxBodyBytes: 16, bodyTimeoutMs: 50 });
    const seen: unknown[] = [];
    api.route('POST', '/echo', async (req) => {
      try {
        return { bytes: (await req.body()).length };
      } catch (err) {
        seen.push(err);
        throw err;
      }
    });
    const grow = async function* () {
      yield 'x'.repeat(10);
      yield 'x'.repeat(10);
    };
    await assert.rejects(api.request('POST', '/echo', { body: grow() }), { code: 'ECONNRESET' });
    await assert.rejects(api.request('POST', '/echo', { body: stalled('{') }), { code: 'ECONNRESET' });
    assert.deepEqual(
      seen.map((e) => (e as Error).name),
      ['BodyTooLargeError', 'BodyTimeoutError'],
    );
  });

  it('a body that is not JSON is 400 BAD_JSON', async () => {
    const { api } = setup();
    api.route('POST', '/json', (req) => req.json());
    const res = await api.request('POST', '/json', { body: '{"a":' });
    assert.equal(res.status, 400);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'BAD_JSON');
    assert.deepEqual((await api.request('POST', '/json', { body: '{"a":1}' })).json(), { a: 1 });
  });

  it('maps each domain error kind to its status, with the code and message', async () => {
    const { api, lines } = setup();
    for (const [kind, status] of Object.entries(STATUS_BY_KIND)) {
      api.route('GET', `/fail/${kind}`, () => {
        throw new PlexusError('SOME_CODE', `failed as ${kind}`, kind as PlexusError['kind']);
      });
      const res = await api.request('GET', `/fail/${kind}`);
      assert.equal(res.status, status, kind);
      assert.deepEqual(res.json(), { error: { code: 'SOME_CODE', message: `failed as ${kind}` } });
    }
    api.route('GET', '/named', () => {
      throw new BadSinceError();
    });
    assert.equal((await api.request('GET', '/named')).status, 400);
    assert.deepEqual(
      lines.filter((l) => l.level === 50),
      [],
      'domain errors are answers, not log errors',
    );
  });

  it('an unexpected error is a 500 without internals, logged with its stack', async () => {
    const { api, lines } = setup();
    api.route('GET', '/boom', () => {
      throw new Error('db password is hunter2');
    });
    const res = await api.request('GET', '/boom');
    assert.equal(res.status, 500);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'INTERNAL');
    assert.doesNotMatch(res.text(), /hunter2/);
    const logged = lines.find((l) => l.msg === 'request failed unexpectedly');
    assert.ok(logged, 'logged');
    assert.equal(logged.level, 50);
    assert.match(String((logged.err as { stack?: string }).stack), /hunter2/);
    assert.deepEqual([logged.method, logged.url], ['GET', '/boom']);
  });

  it('streams NDJSON; an error after the first frame ends the stream instead of a JSON body', async () => {
    const { api } = setup();
    api.route('GET', '/stream', async (req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      for (let i = 0; i < 3; i++) await writeJsonLine(res, { type: 'data', data: i });
      if (req.query.has('fail')) throw new Error('broke mid-stream');
      await writeJsonLine(res, { type: 'result', result: 'done' });
      res.end();
    });
    const ok = await api.request('GET', '/stream');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['transfer-encoding'], 'chunked');
    assert.deepEqual(ok.ndjson(), [
      { type: 'data', data: 0 },
      { type: 'data', data: 1 },
      { type: 'data', data: 2 },
      { type: 'result', result: 'done' },
    ]);
    const broken = await api.request('GET', '/stream?fail');
    assert.equal(broken.status, 200);
    assert.deepEqual(
      broken.ndjson().map((f) => (f as { type: string }).type),
      ['data', 'data', 'data'],
    );
  });

  it('a client that goes away closes the response, which a streaming handler sees', async () => {
    const { api } = setup();
    let closed = false;
    api.route('GET', '/follow', async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      await writeJsonLine(res, { type: 'data', data: 'first' });
      await new Promise<void>((resolve) => res.once('close', resolve));
      closed = true;
    });
    const abort = new AbortController();
    const pending = api.request('GET', '/follow', { signal: abort.signal });
    setTimeout(() => abort.abort(), 20);
    const res = await pending;
    assert.equal(closed, true);
    assert.deepEqual(res.ndjson(), [{ type: 'data', data: 'first' }]);
  });
});
