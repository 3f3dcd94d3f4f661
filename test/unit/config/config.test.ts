import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/index.ts';
import { migrate, openStore } from '../../../src/store/index.ts';
import { codeOf } from '../../helpers/errors.ts';

function withFile(text: string, fn: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-cfg-'));
  try {
    const path = join(dir, 'config.yaml');
    writeFileSync(path, text);
    fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('config', () => {
  it('fills defaults and applies PLEXUS_SECTION__KEY overrides', () => {
    withFile('node:\n  name: web-1\n', (path) => {
      const c = loadConfig(path, {
        PLEXUS_SOCKS__LISTEN: 'off',
        PLEXUS_TELEMETRY__INTERVAL_S: '2',
        PLEXUS_MESH__LISTEN: '["/ip4/127.0.0.1/tcp/9000"]',
      });
      assert.equal(c.node.name, 'web-1');
      assert.equal(c.socks.listen, 'off');
      assert.equal(c.telemetry.intervalS, 2);
      assert.deepEqual(c.mesh.listen, ['/ip4/127.0.0.1/tcp/9000']);
      assert.equal(c.api.listen, '127.0.0.1:7071');
    });
  });

  it('refuses malformed files with CONFIG_INVALID', () => {
    const bad = [
      'node: [unclosed',
      '- a list',
      'node:\n  name: Not_A_Label\n',
      'node:\n  name: a\nbogus: 1\n',
      'node:\n  name: a\napi:\n  listen: nowhere\n',
    ];
    for (const text of bad)
      withFile(text, (path) =>
        assert.equal(
          codeOf(() => loadConfig(path, {})),
          'CONFIG_INVALID',
          text,
        ),
      );
    withFile('node:\n  name: a\n', (path) =>
      assert.equal(
        codeOf(() => loadConfig(path, { PLEXUS_API__NOPE: '1' })),
        'CONFIG_INVALID',
      ),
    );
    withFile(`node:\n  name: a\n#${'x'.repeat(300_000)}\n`, (path) =>
      assert.equal(
        codeOf(() => loadConfig(path, {})),
        'CONFIG_INVALID',
      ),
    );
  });
});

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
