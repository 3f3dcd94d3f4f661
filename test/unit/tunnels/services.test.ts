/** Exposed services (src/tunnels/services.ts): stored, provided by apps, manual wins a clash. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openStore } from '../../../src/store/index.ts';
import { tunnelMigrations } from '../../../src/tunnels/migrations.ts';
import { ServiceDirectory, ServiceRepo } from '../../../src/tunnels/services.ts';

describe('services table', () => {
  const db = () => openStore(':memory:', tunnelMigrations);

  test('exposed services persist; providers add apps; manual exposure wins a clash', () => {
    const store = db();
    const dir = new ServiceDirectory(new ServiceRepo(store), 'n1');
    dir.expose('db', 5432);
    dir.expose('db', 5433); // re-expose replaces the port
    let apps = [
      { name: 'web', port: 8080 },
      { name: 'db', port: 1 },
      { name: 'Bad', port: 80 },
      { name: 'x', port: 0 },
    ];
    dir.addProvider('app', () => apps);
    assert.deepEqual(dir.list(), [
      { name: 'db', port: 5433, source: 'manual' },
      { name: 'web', port: 8080, source: 'app' },
    ]);
    assert.equal(dir.portOf('web'), 8080);
    assert.equal(dir.isExposedPort(8080), true);
    assert.equal(dir.isExposedPort(1), false);
    assert.throws(() => dir.unexpose('web'), { code: 'SERVICE_PROVIDED' });
    apps = [];
    assert.equal(dir.portOf('web'), undefined);
    // A fresh directory over the same table sees the stored service.
    assert.deepEqual(new ServiceDirectory(new ServiceRepo(store), 'n1').list(), [
      { name: 'db', port: 5433, source: 'manual' },
    ]);
    dir.unexpose('db');
    assert.throws(() => dir.unexpose('db'), { name: 'UnknownServiceError', code: 'UNKNOWN_SERVICE' });
    assert.deepEqual(dir.list(), []);
  });
});
