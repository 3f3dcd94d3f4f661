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
