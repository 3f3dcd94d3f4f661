import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

describe('shell script of a command', () => {
  it('execs simple commands (after leading assignments) and leaves compound ones to the shell', async () => {
    const { shellScript } = await import('../../../src/workloads/launch-spec.ts');
    assert.equal(shellScript('node server.js --port 8080'), 'exec node server.js --port 8080');
    assert.equal(
      shellScript('NODE_ENV=production node server.js'),
      'NODE_ENV=production exec node server.js',
    );
    assert.equal(shellScript('cd web && node server.js'), 'cd web && node server.js');
    assert.equal(shellScript('./run | tee out'), './run | tee out');
    assert.equal(shellScript('cd web'), 'cd web');
  });
});

describe('environment of a release', () => {
  it("PORT is the release's private port, over an env var of that name; the unit instance follows it", async () => {
    const { buildLaunchSpec } = await import('../../../src/workloads/launch-spec.ts');
    const { appPaths } = await import('../../../src/workloads/releases.ts');
    const rel = {
      app: 'web',
      id: 'r1',
      createdAt: 0,
      source: 'upload',
      sha256: 'a'.repeat(64),
      bytes: 0,
      spec: { cmd: 'node x', port: 8080, restart: 'always' as const, env: { PORT: '1' } },
      status: 'ready' as const,
    };
    const paths = appPaths('/data/apps', 'web');
    const behind = buildLaunchSpec('web', rel, paths, { PORT: '2' }, [], undefined, [], 41234);
    assert.equal(behind.env.PORT, '41234');
    assert.equal(behind.instance, '41234');
    const legacy = buildLaunchSpec('web', rel, paths, {}, []);
    assert.equal(legacy.env.PORT, '8080', 'no private port yet: the declared one');
    assert.equal(legacy.instance, undefined);
  });
});
