/**
 * Where the data listener and the splice listener bind (listener.ts, dataListenOf), from config
 * `tunnels.dataListen` and `tunnels.splicePort`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataListenOf } from '../../../../../src/tunnels/carriers/data/listener.ts';

describe('dataListenOf', () => {
  it('auto: the first IP mesh listen address, any free port; the splice port as configured', () => {
    const mesh = ['/dns4/example.org/tcp/7070', '/ip4/10.0.0.1/tcp/7070'];
    assert.deepEqual(dataListenOf('auto', mesh), { host: '10.0.0.1', port: 0 });
    assert.deepEqual(dataListenOf('auto', mesh, 7081), { host: '10.0.0.1', port: 0, splicePort: 7081 });
  });

  it('HOST:PORT fixes the data port; the splice listener shares its host', () => {
    assert.deepEqual(dataListenOf('[::1]:7080', [], 'auto'), { host: '::1', port: 7080 });
    assert.deepEqual(dataListenOf('0.0.0.0:7080', [], 7081), {
      host: '0.0.0.0',
      port: 7080,
      splicePort: 7081,
    });
  });

  it('off, or no IP listen address: no data listener, and so no splices', () => {
    assert.equal(dataListenOf('off', ['/ip4/10.0.0.1/tcp/7070'], 7081), undefined);
    assert.equal(dataListenOf('auto', ['/dns4/example.org/tcp/7070']), undefined);
  });
});
