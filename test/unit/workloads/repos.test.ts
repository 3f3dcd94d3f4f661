import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore } from '../../../src/store/index.ts';
import { AppRepo } from '../../../src/workloads/app-repo.ts';
import { EventRepo } from '../../../src/workloads/event-repo.ts';
import { HookRepo } from '../../../src/workloads/hook-repo.ts';
import { workloadsMigrations } from '../../../src/workloads/migrations.ts';
import { ReleaseRepo, type ReleaseRow } from '../../../src/workloads/release-repo.ts';
import { SecretBox } from '../../../src/workloads/secrets.ts';

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

describe('workload repositories', () => {
  it('apps: partial updates keep the other fields', () => {
    const { apps } = setup();
    apps.update('api', { status: 'running', pid: 42, pidStart: '123', restarts: 2 });
    apps.update('api', { restarts: 3 });
    const row = apps.get('api')!;
    assert.equal(row.pid, 42);
    assert.equal(row.pidStart, '123');
    assert.equal(row.restarts, 3);
    assert.deepEqual(row.spec, spec);
  });

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

  it('events: newest last, and the history of an app stays bounded', () => {
    const { db } = setup();
    const events = new EventRepo(db);
    for (let i = 0; i < 600; i++) events.add('api', 'restart', null, `n${i}`);
    const all = events.list('api', 1000);
    assert.ok(all.length <= 550, `kept ${all.length}`);
    assert.equal(all.at(-1)?.detail, 'n599');
  });

  it('hooks: a signature is accepted once, and a secret survives only as ciphertext', () => {
    const { db } = setup();
    const hooks = new HookRepo(db, new SecretBox(Buffer.alloc(32, 1)));
    const { secret } = hooks.ensure('api', false);
    assert.equal(hooks.ensure('api', false).secret, secret);
    assert.notEqual(hooks.ensure('api', true).secret, secret);
    const raw = db.prepare('SELECT value FROM app_hooks').get() as { value: Buffer };
    assert.ok(!raw.value.toString('utf8').includes('whsec_'));
    const exp = Date.now() + 60_000;
    assert.equal(hooks.remember('sha256=ab', exp), true);
    assert.equal(hooks.remember('sha256=ab', exp), false);
  });
});
