/** The forwards table (src/tunnels/forward-repo.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openStore } from '../../../src/store/index.ts';
import { ForwardRepo } from '../../../src/tunnels/forward-repo.ts';
import { tunnelMigrations } from '../../../src/tunnels/migrations.ts';

describe('forwards table', () => {
  const db = () => openStore(':memory:', tunnelMigrations);

  test('forwards persist and one listen address holds one forward', () => {
    const repo = new ForwardRepo(db());
    const row = { id: 'fw-1', listenHost: '127.0.0.1', listenPort: 15432, target: 'db.n2', createdAt: 1 };
    repo.insert(row);
    assert.throws(() => repo.insert({ ...row, id: 'fw-2' }), /UNIQUE/);
    assert.deepEqual(repo.list(), [row]);
    assert.equal(repo.remove('fw-1'), true);
    assert.equal(repo.remove('fw-1'), false);
    assert.deepEqual(repo.list(), []);
  });
});
