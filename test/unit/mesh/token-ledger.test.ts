/** `plexus token ls`: each token created here shows its uses and whether it is still usable. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Membership } from '../../../src/mesh/membership.ts';
import { meshMigrations } from '../../../src/mesh/migrations.ts';
import { signRevocation } from '../../../src/mesh/records.ts';
import { TokenLedger } from '../../../src/mesh/token-ledger.ts';
import { openStore } from '../../../src/store/index.ts';
import { identity, testNetwork } from '../../helpers/admissions.ts';

describe('token ledger', () => {
  it('lists tokens created here as active, used, expired or revoked', () => {
    const net = testNetwork();
    const admin = net.admin;
    const db = openStore(':memory:', meshMigrations);
    const membership = new Membership(db, admin.publicKey);
    const ledger = new TokenLedger(db, membership);
    const now = Date.now();
    const exp = Math.floor(now / 1000) + 3600;
    ledger.record({ id: 'tok_ACTIVE01', exp, uses: 2, tags: ['web'] });
    ledger.record({ id: 'tok_USEDUP01', exp, uses: 1, tags: [] });
    ledger.record({ id: 'tok_EXPIRED1', exp: Math.floor(now / 1000) - 1, uses: 1, tags: [] });
    ledger.record({ id: 'tok_REVOKED1', exp, uses: 1, tags: [] });

    // One node joined with each of the first two tokens; the last one was revoked.
    for (const [id, uses] of [
      ['tok_ACTIVE01', 2],
      ['tok_USEDUP01', 1],
    ] as const) {
      const token = net.token({ id, uses }).decoded;
      const name = id.slice(4).toLowerCase();
      assert.equal(membership.accept(net.admit(identity(), name, { token })), 'added');
    }
    membership.revoke(signRevocation({ kind: 'token', subject: 'tok_REVOKED1', at: now }, admin));

    const byId = new Map(ledger.list(now).map((t) => [t.id, t]));
    // Tokens created in one millisecond tie on created_at: compare in id order.
    assert.deepEqual([...byId.values()].map((t) => [t.id, t.state, t.used]).sort(), [
      ['tok_ACTIVE01', 'active', 1],
      ['tok_EXPIRED1', 'expired', 0],
      ['tok_REVOKED1', 'revoked', 0],
      ['tok_USEDUP01', 'used', 1],
    ]);
    assert.deepEqual(byId.get('tok_ACTIVE01')?.tags, ['web']);
    assert.equal(byId.get('tok_ACTIVE01')?.expiresAt, exp * 1000);
    assert.equal(ledger.has('tok_ACTIVE01'), true);
    assert.equal(ledger.has('tok_UNKNOWN1'), false);
  });
});
