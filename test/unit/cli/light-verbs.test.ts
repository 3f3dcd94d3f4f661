/**
 * CLI verbs that only talk to an agent start fast because they load neither libp2p (~0.35 s and
 * 100 MB to import) nor SQLite: both are the agent's. Each verb here runs as a user runs it,
 * with a module-load recorder preloaded, against a data dir with no agent or an API that is not
 * there, so it fails as fast as it can after loading everything its verb file imports.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const PLEXUS = join(ROOT, 'bin', 'plexus');
const RECORDER = pathToFileURL(join(ROOT, 'test', 'fixtures', 'cli', 'record-loads.mjs')).href;
const HEAVY = /\/node_modules\/(@libp2p\/|libp2p\/|@chainsafe\/|better-sqlite3\/)/;

const dir = mkdtempSync(join(tmpdir(), 'plexus-light-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `plexus ARGS` and returns the module URLs it loaded. */
function loadsOf(args: string[]): string[] {
  const out = join(dir, 'loads.txt');
  const r = spawnSync(PLEXUS, args, {
    env: { ...process.env, PLEXUS_TEST_LOADS: out, NODE_OPTIONS: `--import=${RECORDER}` },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.error, undefined);
  return readFileSync(out, 'utf8').split('\n').filter(Boolean);
}

describe('light CLI verbs', () => {
  const data = ['--data-dir', join(dir, 'no-agent')];
  const key = join(dir, 'op.key');
  for (const args of [
    ['status', ...data],
    ['peers', ...data],
    ['rotate-swarm-key', '--status', ...data],
    ['apps', ...data],
    ['logs', 'web', ...data],
    ['exec', 'n2', ...data, '--', 'true'],
    ['exec', '-i', 'n2', ...data, '--', 'true'],
    ['shell', 'n2', ...data],
    ['audit', 'sessions', ...data],
    ['cp', 'n2:/etc/hostname', join(dir, 'hostname'), ...data],
    ['ssh-proxy', 'n2', ...data],
    ['ssh-config'],
    ['operator', 'keygen', '--out', key],
    // Records an admin key, so that the remote verb below gets as far as asking the API.
    ['operator', 'use', key, '--admin', 'A'.repeat(43)],
    ['--api', 'http://127.0.0.1:9', '--key', key, 'apps', '--node', 'n2'],
  ]) {
    it(`plexus ${args.join(' ')} loads no libp2p and no SQLite`, () => {
      const loads = loadsOf(args);
      assert.ok(
        loads.some((u) => u.endsWith('/src/cli/main.ts')),
        'the recorder saw the CLI load (else this test proves nothing)',
      );
      assert.deepEqual(
        loads.filter((u) => HEAVY.test(u)),
        [],
      );
    });
  }
});
