/** Mesh addresses (src/tunnels/targets.ts): forward targets and SOCKS host names. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatTarget, parseTarget, socksTarget } from '../../../src/tunnels/targets.ts';

describe('mesh addresses', () => {
  test('forward targets: service.node and node:port, with or without .plexus', () => {
    assert.deepEqual(parseTarget('db.web-2'), { service: 'db', node: 'web-2' });
    assert.deepEqual(parseTarget('db.web-2.plexus'), { service: 'db', node: 'web-2' });
    assert.deepEqual(parseTarget('web-2:5432'), { node: 'web-2', port: 5432 });
    assert.deepEqual(parseTarget('WEB-2.plexus:5432'), { node: 'web-2', port: 5432 });
    assert.equal(formatTarget(parseTarget('db.web-2.plexus')), 'db.web-2');
    for (const bad of [
      'db',
      'a.b.c',
      'web-2:0',
      'web-2:65536',
      'web-2:x',
      ':80',
      'Bad_Name.n1',
      'x'.repeat(400),
    ])
      assert.throws(() => parseTarget(bad), { name: 'InvalidTargetError' }, bad);
  });

  test('SOCKS names: only mesh forms resolve, anything else is refused', () => {
    assert.deepEqual(socksTarget('web.n2', 80), { service: 'web', node: 'n2' });
    assert.deepEqual(socksTarget('web.n2.plexus', 80), { service: 'web', node: 'n2' });
    assert.deepEqual(socksTarget('n2', 5432), { node: 'n2', port: 5432 });
    assert.deepEqual(socksTarget('n2.plexus.', 5432), { node: 'n2', port: 5432 });
    assert.equal(socksTarget('www.example.com', 80), undefined);
    assert.equal(socksTarget('127.0.0.1', 80), undefined);
    assert.equal(socksTarget('', 80), undefined);
    assert.equal(socksTarget('evil_host.n2', 80), undefined);
  });
});
