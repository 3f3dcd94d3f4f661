/**
 * The installed prom-client carries patches/prom-client+*.patch: loading it does not load
 * node:https (and TLS, ~3 MB of an idle agent's RSS: bench/patches.ts, bench/join.ts) until
 * something asks for its Pushgateway. Unpatched, its index requires the Pushgateway at once.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

/** Runs `code` in a fresh Node and returns the built-in modules it loaded among tls and https. */
function loadedBy(code: string): string[] {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `${code}; console.log(JSON.stringify(process.moduleLoadList.filter((m) => /^NativeModule (tls|https)$/.test(m))))`,
    ],
    { encoding: 'utf8', cwd: import.meta.dirname },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('prom-client', () => {
  it('loads no TLS until its Pushgateway is used', () => {
    assert.deepEqual(loadedBy("const p = require('prom-client'); new p.Registry()"), []);
    assert.deepEqual(loadedBy("const p = require('prom-client'); void p.Pushgateway").sort(), [
      'NativeModule https',
      'NativeModule tls',
    ]);
  });
});
