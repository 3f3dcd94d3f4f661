/** Forwards (src/tunnels/forwards.ts): what a forward's listen address may be. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseListen } from '../../../src/tunnels/forwards.ts';

describe('forwards', () => {
  test('forward listen addresses', () => {
    assert.deepEqual(parseListen(undefined), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseListen('15432'), { host: '127.0.0.1', port: 15432 });
    assert.deepEqual(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
    assert.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
    for (const bad of ['x', '1:2:3', '70000', 'host:'])
      assert.throws(() => parseListen(bad), { name: 'ListenError' }, bad);
  });
});
