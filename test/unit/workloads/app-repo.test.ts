import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore } from '../../../src/store/index.ts';
import { AppRepo } from '../../../src/workloads/app-repo.ts';
import { workloadsMigrations } from '../../../src/workloads/migrations.ts';

const spec = { cmd: 'node x', restart: 'always' as const, env: {} };

function setup() {
  const db = openStore(':memory:', workloadsMigrations);
  const apps = new AppRepo(db);
  apps.insert({ name: 'api', spec, desired: 'running', status: 'deploying' });
  return { apps };
}

describe('app repository', () => {
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
});
