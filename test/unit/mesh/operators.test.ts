import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { b64u, generateSigner } from '../../../src/crypto/ed25519.ts';
import { Membership } from '../../../src/mesh/membership.ts';
import { meshMigrations } from '../../../src/mesh/migrations.ts';
import { type GrantPayload, signGrant } from '../../../src/mesh/operators.ts';
import { signRevocation } from '../../../src/mesh/records.ts';
import { openStore } from '../../../src/store/index.ts';

const admin = generateSigner().signer;
const fresh = () => new Membership(openStore(':memory:', meshMigrations), admin.publicKey);

function grantFor(role: GrantPayload['role'], extra: Partial<GrantPayload> = {}) {
  const key = generateSigner().signer;
  const payload: GrantPayload = { kid: key.kid, pubkey: b64u(key.publicKey), role, at: Date.now(), ...extra };
  return { key, blob: signGrant(payload, admin) };
}

describe('operator grants', () => {
  it('the admin key is always an admin operator', () => {
    const m = fresh();
    const k = m.operators.lookup(admin.kid)!;
    assert.deepEqual([k.role, k.source, k.revoked], ['admin', 'admin-key', false]);
  });

  it('accepts admin-signed grants, refuses others, and the later grant for a key wins', () => {
    const m = fresh();
    const { key, blob } = grantFor('viewer');
    assert.equal(m.operators.accept(blob), true);
    assert.equal(m.operators.accept(blob), false);
    assert.equal(m.operators.lookup(key.kid)?.role, 'viewer');
    const upgrade = signGrant(
      {
        kid: key.kid,
        pubkey: b64u(key.publicKey),
        role: 'operator',
        tenant: 'blue',
        exec: true,
        at: Date.now() + 1,
      },
      admin,
    );
    assert.equal(m.operators.accept(upgrade), true);
    assert.equal(m.operators.accept(blob), false, 'an older grant never overrides a newer one');
    const k = m.operators.lookup(key.kid)!;
    assert.deepEqual([k.role, k.tenant, k.exec], ['operator', 'blue', true]);
    const rogue = generateSigner().signer;
    const forged = signGrant(
      { kid: key.kid, pubkey: b64u(key.publicKey), role: 'admin', at: Date.now() + 5 },
      rogue,
    );
    assert.equal(m.operators.accept(forged), false);
    assert.equal(m.operators.accept({ p: 'x', s: 'y' }), false);
    const mismatched = grantFor('admin', { kid: 'AAAAAAAAAAAAAAAA' });
    assert.equal(m.operators.accept(mismatched.blob), false, 'kid must match the public key');
  });

  it('a revocation wins over any grant, before or after, and travels in the snapshot', () => {
    const a = fresh();
    const b = fresh();
    const { key, blob } = grantFor('operator');
    a.operators.accept(blob);
    const rev = signRevocation({ kind: 'operator', subject: key.kid, at: Date.now() }, admin);
    assert.equal(a.revoke(rev), true);
    assert.equal(a.operators.lookup(key.kid)?.revoked, true);
    // b learns the revocation and the grant in one snapshot; the revocation still wins.
    b.merge(a.snapshot());
    assert.equal(b.operators.lookup(key.kid)?.revoked, true);
    const regrant = signGrant(
      { kid: key.kid, pubkey: b64u(key.publicKey), role: 'admin', at: Date.now() + 10 },
      admin,
    );
    assert.equal(b.operators.accept(regrant), false);
    assert.equal(b.operators.lookup(key.kid)?.revoked, true);
  });

  it('grants spread through the membership snapshot', () => {
    const a = fresh();
    const b = fresh();
    const { key, blob } = grantFor('viewer', { exp: Math.floor(Date.now() / 1000) + 60 });
    a.operators.accept(blob);
    assert.equal(b.merge(a.snapshot()), 1);
    assert.equal(b.operators.lookup(key.kid)?.role, 'viewer');
    assert.equal(b.merge({ members: [], revocations: [] }), 0, 'an older peer without grants is fine');
  });
});
