/** `--env NAME=VALUE` flags of the app verbs (src/cli/apps.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseEnv } from '../../../src/cli/apps.ts';

describe('app verbs: --env', () => {
  it('refuses bad env names, and never echoes the value', () => {
    assert.deepEqual(parseEnv(['A_1=x=y', 'B=']), { A_1: 'x=y', B: '' });
    for (const bad of ['1A=x', 'A-B=x', 'NOEQUALS', '=x']) {
      assert.throws(
        () => parseEnv([bad]),
        (err: Error & { code?: string }) => {
          assert.equal(err.name, 'UsageError');
          assert.ok(!err.message.includes('=x'), 'value must not appear');
          return true;
        },
      );
    }
  });
});
