import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore } from '../../../src/store/index.ts';
import { AppRepo } from '../../../src/workloads/app-repo.ts';
import { HookRepo } from '../../../src/workloads/hook-repo.ts';
import { workloadsMigrations } from '../../../src/workloads/migrations.ts';
import { SecretBox } from '../../../src/workloads/secrets.ts';
import { recordSynchronous } from '../../helpers/sqlite.ts';

describe('hook repository', () => {
  it('hooks: a signature is accepted once, and a secret survives only as ciphertext', () => {
    const db = openStore(':memory:', workloadsMigrations);
    new AppRepo(db).insert({
      name: 'api',
      spec: { cmd: 'node x', restart: 'always', env: {} },
      desired: 'running',
      status: 'deploying',
    });
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

describe('hook repository durability', () => {
  it('a webhook signature commits with synchronous=FULL (a power cut cannot reopen its replay)', () => {
    const db = openStore(':memory:', workloadsMigrations);
    const levels = recordSynchronous(db);
    const hooks = new HookRepo(db, new SecretBox(Buffer.alloc(32, 1)));
    assert.equal(hooks.remember('sha256=cd', Date.now() + 60_000), true);
    assert.deepEqual(levels, ['synchronous=FULL', 'synchronous=NORMAL']);
  });
});
