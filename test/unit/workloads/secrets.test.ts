import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openStore } from '../../../src/store/index.ts';
import { AppRepo } from '../../../src/workloads/app-repo.ts';
import { EnvRepo } from '../../../src/workloads/env-repo.ts';
import { workloadsMigrations } from '../../../src/workloads/migrations.ts';
import { SecretBox } from '../../../src/workloads/secrets.ts';

const tmp = mkdtempSync(join(tmpdir(), 'plexus-wl-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('secrets at rest', () => {
  const key = Buffer.alloc(32, 7);

  it('round-trips, with a fresh nonce every time', () => {
    const box = new SecretBox(key);
    const a = box.seal('api', 'TOKEN', 'hunter2');
    const b = box.seal('api', 'TOKEN', 'hunter2');
    assert.equal(a.nonce.length, 12);
    assert.notDeepEqual(a.nonce, b.nonce);
    assert.equal(box.open('api', 'TOKEN', a), 'hunter2');
  });

  it('a value moved to another app or name does not decrypt (AAD)', () => {
    const box = new SecretBox(key);
    const sealed = box.seal('api', 'TOKEN', 'hunter2');
    assert.throws(() => box.open('web', 'TOKEN', sealed), { code: 'SECRET_UNREADABLE' });
    assert.throws(() => box.open('api', 'OTHER', sealed), { code: 'SECRET_UNREADABLE' });
    assert.throws(() => new SecretBox(Buffer.alloc(32, 8)).open('api', 'TOKEN', sealed), {
      code: 'SECRET_UNREADABLE',
    });
  });

  it('the database file never holds the plaintext', () => {
    const path = join(tmp, 'secrets.db');
    const db = openStore(path, workloadsMigrations);
    new AppRepo(db).insert({
      name: 'api',
      spec: { cmd: 'x', restart: 'always', env: {} },
      desired: 'running',
      status: 'running',
    });
    const env = new EnvRepo(db, new SecretBox(key));
    const secret = 'sk_live_PLAINTEXT_MARKER_42';
    env.set('api', { STRIPE_KEY: secret });
    assert.equal(env.reveal('api').STRIPE_KEY, secret);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    for (const f of [path, `${path}-wal`]) {
      try {
        assert.ok(!readFileSync(f).includes(secret), `${f} holds the plaintext`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  });
});
