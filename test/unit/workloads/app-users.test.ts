import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  defaultUserName,
  ensureAppUser,
  lookupUser,
  USER_NAME_RE,
} from '../../../src/workloads/app-users.ts';

describe('app users', () => {
  it('plexus-app-NAME, and for long names a deterministic name within Linux 32 characters', () => {
    assert.equal(defaultUserName('api'), 'plexus-app-api');
    assert.equal(defaultUserName('a'.repeat(21)), `plexus-app-${'a'.repeat(21)}`);
    const long = 'billing-worker-europe-west-1';
    const a = defaultUserName(long);
    assert.ok(a.length <= 32, a);
    assert.match(a, USER_NAME_RE);
    assert.equal(defaultUserName(long), a, 'the same app always gets the same user');
    // Two long names that share their first characters still get different users.
    assert.notEqual(defaultUserName(`${long}-a`), defaultUserName(`${long}-b`));
    const max = 'x'.repeat(63);
    assert.ok(defaultUserName(max).length <= 32);
    // A cut that would end in '-' drops it: no 'plexus-app-billing--1a2b3c4d'.
    assert.doesNotMatch(defaultUserName('billing-----worker-europe'), /--/);
  });

  it('finds existing users and refuses names no tool accepts', async () => {
    assert.equal((await lookupUser('root'))?.uid, 0);
    assert.equal(await lookupUser('no-such-user-plexus'), undefined);
    assert.equal(await lookupUser('../etc'), undefined);
    await assert.rejects(ensureAppUser('x', 'no-such-user-plexus'), { code: 'UNKNOWN_USER' });
  });

  it("refuses a default name held by a user plexus did not make (it would get that user's rights)", async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to create users');
    // The default user of app 'squatted' exists, made by someone else (another comment).
    const { execFileSync } = await import('node:child_process');
    const name = defaultUserName('squatted');
    if (!(await lookupUser(name)))
      execFileSync('useradd', [
        '--system',
        '--no-create-home',
        '--shell',
        '/usr/sbin/nologin',
        '--comment',
        'someone else',
        name,
      ]);
    await assert.rejects(ensureAppUser('squatted'), { code: 'APP_USER_CONFLICT' });
    const made = await ensureAppUser('usertest');
    assert.notEqual(made.uid, 0);
    assert.deepEqual(await ensureAppUser('usertest'), made, 'made once, found after');
  });
});
