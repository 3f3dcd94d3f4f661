import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHealth, resolveSpec } from '../../../src/workloads/spec.ts';

describe('run spec', () => {
  it('flags beat the manifest, which beats the previous release; bundle env is not inherited', () => {
    const spec = resolveSpec(
      { port: 9000 },
      { cmd: 'node new.js', env: { A: 'manifest' } },
      { cmd: 'node old.js', port: 8000, restart: 'on-failure', env: undefined },
    );
    assert.deepEqual(spec, { cmd: 'node new.js', port: 9000, restart: 'on-failure', env: { A: 'manifest' } });
  });

  it('a deploy with no command anywhere is refused', () => {
    assert.throws(() => resolveSpec({}, undefined, undefined), { code: 'NO_COMMAND' });
  });

  it('parses health checks', () => {
    assert.deepEqual(parseHealth('http://:8080/healthz'), {
      kind: 'http',
      tls: false,
      host: '127.0.0.1',
      port: 8080,
      path: '/healthz',
    });
    assert.deepEqual(parseHealth('tcp:5432'), { kind: 'tcp', host: '127.0.0.1', port: 5432 });
    assert.throws(() => parseHealth('tcp:99999'), { code: 'BAD_HEALTH' });
  });
});
