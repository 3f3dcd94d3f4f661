/**
 * Apps never run as root (issue 13), under the process supervisor: an app that tries to read the
 * agent's keys and database, connect to its control socket, write into another app's folders,
 * signal the agent and read its memory fails at every step, and runs as a user of its own with
 * no supplementary groups. An app from before per-app users moves to its own user on its next
 * restart, with its files and data, and its event log says so. Needs root (to switch users);
 * the same check under a real systemd is test/e2e/workloads-systemd.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/index.ts';
import { openStore } from '../../src/store/index.ts';
import { defaultUserName } from '../../src/workloads/app-users.ts';
import { createProcessBackend, Workloads, workloadsMigrations } from '../../src/workloads/index.ts';
import { tarGzDir } from '../helpers/archives.ts';
import { freePort, waitFor } from '../helpers/cluster.ts';
import { httpText } from '../helpers/http.ts';
import { DENIED_ATTEMPTS, runIsolation } from '../helpers/isolation.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const root = mkdtempSync(join(tmpdir(), 'plexus-iso-'));
chmodSync(root, 0o711); // app users pass through to their folders, as under /var/lib
const notRoot = process.getuid?.() !== 0 ? 'needs root to run apps as users of their own' : undefined;
after(() => {
  killProcessesUnder(root);
  rmSync(root, { recursive: true, force: true });
});

describe('an app under the process supervisor', { skip: notRoot }, () => {
  it('cannot reach the keys, the database, the socket, other apps or the agent, and logs a uid that is not 0', async () => {
    const data = join(root, 'data');
    const r = await runIsolation('process', data);
    console.log(`hostile app under the process backend: ${JSON.stringify(r.app)}`);
    assert.equal(r.status, 'running');
    assert.notEqual(r.app.uid, 0, 'not root');
    assert.notEqual(r.app.gid, 0, 'not in the root group');
    assert.equal(r.app.user, defaultUserName('pwn'));
    assert.equal(r.app.groups, '', 'no supplementary groups (the agent is root: group 0 would leak)');
    assert.equal(r.app.capEff, '0000000000000000', 'no capabilities');
    for (const k of DENIED_ATTEMPTS) assert.notEqual(r.app[k], 'ok', `${k} must fail, gave ${r.app[k]}`);
    assert.equal(r.socketConnections, 0);
    assert.deepEqual(r.plantedInOther, []);
    // What it may do: write its own data folder (its HOME) and its release.
    assert.equal(r.app.writeOwnData, 'ok');
    assert.equal(r.app.writeOwnRelease, 'ok');
    // The agent made the data dir private: the 0644 config is no longer readable by others.
    assert.equal(statSync(join(data, 'config.yaml')).mode & 0o077, 0);
  });
});

describe('an app deployed before per-app users', { skip: notRoot }, () => {
  it('moves to its own user on its next restart, with its files chowned, its data kept and an event', async () => {
    const dataDir = join(root, 'legacy');
    const db = openStore(':memory:', workloadsMigrations);
    const logger = silentLogger();
    const w = new Workloads(
      { appsDir: join(dataDir, 'apps'), healthTimeoutMs: 15_000, stopGraceMs: 2_000 },
      {
        db,
        logger,
        backend: createProcessBackend({ stopGraceMs: 2_000 }, { logger }),
        masterKey: randomBytes(32),
      },
    );
    await w.start();
    try {
      const fixture = join(import.meta.dirname, '..', 'fixtures', 'workloads', 'app');
      const bundle = await tarGzDir(fixture);
      const port = await freePort();
      await w.deploy({
        app: 'old',
        source: {
          kind: 'upload',
          input: (async function* () {
            yield { chunk: bundle.toString('base64') };
            yield { end: true };
          })(),
        },
        flags: { port },
      });
      // Make it what an install from before looks like: no user recorded, every file root's,
      // and state the app wrote into its release folder.
      const p = w.paths('old');
      const rel = w.get('old').release!;
      const relDir = join(p.releases, rel);
      writeFileSync(join(relDir, 'state.json'), '{"orders": 42}');
      for (const f of [relDir, join(relDir, 'server.cjs'), join(relDir, 'state.json')]) chownSync(f, 0, 0);
      db.prepare('UPDATE apps SET run_as = NULL WHERE name = ?').run('old');
      await w.restartApp('old');
      const pid = w.get('old').pid!;
      await waitFor(() => httpText(port, '/health').then((r) => r.status === 200), 10_000, 'the app back up');
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
      assert.notEqual(uid, 0, 'runs as its own user now');
      assert.equal(statSync(join(relDir, 'state.json')).uid, uid, 'its files are its user’s');
      assert.equal(readFileSync(join(relDir, 'state.json'), 'utf8'), '{"orders": 42}', 'data kept');
      assert.equal(w.apps.get('old')?.runAs, defaultUserName('old'));
      const ev = w.events.list('old').find((e) => e.kind === 'user');
      assert.ok(ev, 'an event says so');
      assert.match(ev.detail ?? '', new RegExp(defaultUserName('old')));
      // Only once: the next restart is an ordinary one.
      await w.restartApp('old');
      assert.equal(w.events.list('old').filter((e) => e.kind === 'user').length, 1);
    } finally {
      await w.removeApp('old').catch(() => {});
      await w.stop();
    }
  });
});
