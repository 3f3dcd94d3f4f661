/** How src/cli/boot.mjs tells the `agent` verb (run from its bundle) from the others. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { verbOf } from '../../../src/cli/verb-of.mjs';

describe('verbOf', () => {
  it('finds the verb after global options and their values', () => {
    assert.equal(verbOf(['agent', '--quiet']), 'agent');
    assert.equal(verbOf(['--data-dir', '/srv/p', 'agent']), 'agent');
    assert.equal(verbOf(['--data-dir=/srv/p', 'agent']), 'agent');
    assert.equal(verbOf(['--api', 'http://127.0.0.1:7071', '--key', 'k', 'status']), 'status');
    assert.equal(verbOf(['--node', 'agent', 'apps']), 'apps');
    assert.equal(verbOf(['--json']), undefined);
  });
});
