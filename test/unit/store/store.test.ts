/** The store runs each subsystem's migrations once, in order, each in a transaction. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { migrate, openStore } from '../../../src/store/index.ts';

describe('store migrations', () => {
  it('runs each migration once, in order, and records it', () => {
    const db = openStore(':memory:', [{ id: 't-001', sql: 'CREATE TABLE t (x INTEGER)' }]);
    migrate(db, [
      { id: 't-001', sql: 'CREATE TABLE t (x INTEGER)' },
      { id: 't-002', sql: 'ALTER TABLE t ADD COLUMN y TEXT' },
    ]);
    const ids = (db.prepare('SELECT id FROM schema_migrations ORDER BY id').all() as { id: string }[]).map(
      (r) => r.id,
    );
    assert.deepEqual(ids, ['t-001', 't-002']);
    db.prepare('INSERT INTO t (x, y) VALUES (1, ?)').run('a');
  });

  it('rolls back a failing migration', () => {
    const db = openStore(':memory:', []);
    assert.throws(() => migrate(db, [{ id: 'bad-001', sql: 'CREATE TABLE ok (x); CREATE TABLE broken (' }]), {
      name: 'StoreError',
    });
    assert.equal(db.prepare("SELECT name FROM sqlite_master WHERE name = 'ok'").get(), undefined);
  });
});
