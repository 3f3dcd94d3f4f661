/**
 * The host-daemon runner with real apt and real processes (issue 18): a failed install leaves the
 * node's packages as they were, a daemon that never becomes ready is stopped and its packages
 * purged, and a daemon the agent supervises is restarted when killed and adopted again by a new
 * runner (an agent restart). Needs root and apt; forces the agent's own supervisor.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { aptUnavailableReason, installedPackages, installedVersion } from '../../src/host/apt.ts';
import type { DaemonSpec } from '../../src/host/daemon-spec.ts';
import { HostDaemons, hostMigrations } from '../../src/host/index.ts';
import { createLogger } from '../../src/logging/index.ts';
import { type Db, openStore } from '../../src/store/index.ts';
import { isSameProcess, readProcStat } from '../../src/workloads/proc.ts';
import { waitFor } from '../helpers/cluster.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const skip = aptUnavailableReason();
const root = mkdtempSync(join(tmpdir(), 'plexus-hostd-'));
chmodSync(root, 0o711);
let db: Db;
const logger = createLogger({ stdout: false }).logger;
const runner = () =>
  new HostDaemons(
    {
      logDir: join(root, 'logs'),
      systemd: false,
      readyTimeoutMs: 3_000,
      processBackend: { backoffMinMs: 50 },
    },
    { db, logger },
  );

const sleeper: DaemonSpec = {
  name: 'sleeper',
  cmd: 'sleep 600',
  user: 'nobody',
  cwd: root,
  unit: 'sleeper.service',
};

describe('host daemons', { skip }, () => {
  before(() => {
    db = openStore(join(root, 'plexus.db'), hostMigrations);
  });
  after(() => {
    killProcessesUnder(root);
    db?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('an install apt refuses adds nothing and says why in one line', async () => {
    const before = await installedPackages();
    const err = await runner()
      .install(['plexus-no-such-package'])
      .catch((e) => e);
    assert.equal(err.code, 'APT_FAILED');
    assert.match(err.message, /plexus-no-such-package/);
    assert.ok(!err.message.includes('\n'));
    assert.deepEqual([...(await installedPackages()).keys()], [...before.keys()]);
  });

  it('a daemon that never becomes ready is stopped, forgotten and its package purged', async (t) => {
    if (await installedVersion('hello'))
      return t.skip('the package hello is installed already: nothing to roll back');
    const r = runner();
    const spec: DaemonSpec = { ...sleeper, name: 'broken', cmd: 'echo cannot start >&2; exit 3' };
    const err = await r.provision(['hello'], spec, async () => false).catch((e) => e);
    assert.equal(err.code, 'DAEMON_START_FAILED');
    assert.match(err.message, /cannot start/);
    assert.equal(await installedVersion('hello'), undefined);
    assert.equal(r.repo.get('broken'), undefined);
    await r.stop();
  });

  it('restarts a killed daemon and adopts it after an agent restart', async () => {
    const r = runner();
    await r.start();
    const up = await r.run(sleeper, async () => (await r.status('sleeper')).pid !== null);
    assert.equal(up.state, 'running');
    assert.equal(up.supervisor, 'agent');
    const first = up.pid!;
    assert.notEqual(readProcStat(first)?.startTime, undefined);
    process.kill(first, 'SIGKILL');
    const second: number = await waitFor(
      async () => {
        const s = await r.status('sleeper');
        return s.pid && s.pid !== first ? s.pid : 0;
      },
      10_000,
      'a restart',
    );
    await r.stop();
    // A new runner on the same table (the agent restarted) adopts the same process.
    const again = runner();
    await again.start();
    const adopted = await again.status('sleeper');
    assert.equal(adopted.pid, second);
    await again.forget('sleeper');
    assert.equal(isSameProcess(second, readProcStat(second)?.startTime ?? null), false);
    assert.equal(again.repo.get('sleeper'), undefined);
    await again.stop();
  });
});
