/**
 * `durably(db, fn)`: one transaction committed with synchronous=FULL (on disk across an OS crash
 * or a power loss), for the security tables; every other write keeps NORMAL.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { durably, openStore } from '../../../src/store/index.ts';

const FULL = 2;
const NORMAL = 1;

function store(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-durably-'));
  const db = openStore(join(dir, 'plexus.db'), [
    { id: 't-001', sql: 'CREATE TABLE t (x INTEGER PRIMARY KEY)' },
  ]);
  t.after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    db,
    level: () => db.pragma('synchronous', { simple: true }),
    rows: () => (db.prepare('SELECT x FROM t ORDER BY x').all() as { x: number }[]).map((r) => r.x),
  };
}

describe('durably', () => {
  it('runs fn in one transaction at synchronous=FULL, and NORMAL again afterwards', (t) => {
    const s = store(t);
    assert.equal(s.level(), NORMAL);
    const seen = durably(s.db, () => {
      s.db.prepare('INSERT INTO t (x) VALUES (1)').run();
      s.db.prepare('INSERT INTO t (x) VALUES (2)').run();
      return [s.level(), s.db.inTransaction];
    });
    assert.deepEqual(seen, [FULL, true]);
    assert.equal(s.level(), NORMAL);
    assert.deepEqual(s.rows(), [1, 2]);
  });

  it('inside a transaction, runs in the outer one: a rollback of the outer undoes it', (t) => {
    const s = store(t);
    const outer = s.db.transaction(() => {
      durably(s.db, () => s.db.prepare('INSERT INTO t (x) VALUES (1)').run());
      assert.equal(s.db.inTransaction, true, 'still the outer transaction');
      throw new Error('outer fails');
    });
    assert.throws(outer, /outer fails/);
    assert.deepEqual(s.rows(), []);
    assert.equal(s.level(), NORMAL);
  });

  it('an exception rolls fn back and restores NORMAL', (t) => {
    const s = store(t);
    assert.throws(
      () =>
        durably(s.db, () => {
          s.db.prepare('INSERT INTO t (x) VALUES (1)').run();
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.deepEqual(s.rows(), []);
    assert.equal(s.level(), NORMAL);
    assert.equal(s.db.inTransaction, false);
  });
});
