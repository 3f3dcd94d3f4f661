import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore } from '../../../src/store/index.ts';
import { AppRepo } from '../../../src/workloads/app-repo.ts';
import { workloadsMigrations } from '../../../src/workloads/migrations.ts';
import { ReleaseRepo, type ReleaseRow } from '../../../src/workloads/release-repo.ts';

const spec = { cmd: 'node x', restart: 'always' as const, env: {} };

function setup() {
  const db = openStore(':memory:', workloadsMigrations);
  const apps = new AppRepo(db);
  apps.insert({ name: 'api', spec, desired: 'running', status: 'deploying' });
  return { db, apps, releases: new ReleaseRepo(db) };
}

const rel = (id: string, at: number, status: ReleaseRow['status'] = 'ready'): ReleaseRow => ({
  app: 'api',
  id,
  createdAt: at,
  source: 'upload',
  sha256: 'a'.repeat(64),
  bytes: 1,
  spec,
  status,
});

describe('release repository', () => {
  it('releases: one active at a time, and old pruned or failed rows are forgotten', () => {
    const { releases } = setup();
    for (let i = 0; i < 30; i++)
      releases.insert(rel(`r${String(i).padStart(2, '0')}`, 1000 + i, i < 25 ? 'pruned' : 'ready'));
    releases.activate('api', 'r29');
    releases.activate('api', 'r28');
    assert.deepEqual(
      releases
        .list('api')
        .filter((r) => r.status === 'active')
        .map((r) => r.id),
      ['r28'],
    );
    releases.forgetOld('api', 20);
    const left = releases.list('api');
    assert.equal(left.length, 20);
    assert.equal(left[0].id, 'r29');
    assert.ok(left.some((r) => r.id === 'r28'));
  });
});
