import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateSigner, type Signer } from '../../../src/crypto/ed25519.ts';
import { generateNodeIdentity, type NodeIdentity } from '../../../src/mesh/keys.ts';
import { Membership } from '../../../src/mesh/membership.ts';
import { meshMigrations } from '../../../src/mesh/migrations.ts';
import { peerIdOf } from '../../../src/mesh/peer-ids.ts';
import {
  type Admission,
  countersign,
  openMember,
  signMember,
  signRevocation,
} from '../../../src/mesh/records.ts';
import { openStore } from '../../../src/store/index.ts';
import { codeOf } from '../../helpers/errors.ts';

interface TestNode {
  id: NodeIdentity;
  peerId: string;
}

function node(): TestNode {
  const id = generateNodeIdentity();
  return { id, peerId: peerIdOf(id.publicKey) };
}

function admission(
  n: TestNode,
  name: string,
  by: TestNode | 'admin',
  admin: Signer,
  at = Date.now(),
  tokenId = 'tok_12345678',
): Admission {
  const member = signMember({ peerId: n.peerId, name, tags: [], tokenId, at }, n.id.signer);
  return by === 'admin' ? countersign(member, 'admin', admin) : countersign(member, by.peerId, by.id.signer);
}

function fresh(admin: Signer): Membership {
  return new Membership(openStore(':memory:', meshMigrations), admin.publicKey);
}

describe('membership', () => {
  it('accepts a chain of admissions in any order and converges', () => {
    const admin = generateSigner().signer;
    const [a, b, c] = [node(), node(), node()];
    const admA = admission(a, 'a', 'admin', admin);
    const admB = admission(b, 'b', a, admin);
    const admC = admission(c, 'c', b, admin);
    const m1 = fresh(admin);
    const m2 = fresh(admin);
    for (const adm of [admA, admB, admC]) m1.accept(adm);
    // Reverse order: c and b wait for their admitters, then drain.
    assert.equal(m2.accept(admC), 'pending');
    assert.equal(m2.accept(admB), 'pending');
    assert.equal(m2.accept(admA), 'added');
    assert.deepEqual(
      m1.list().map((x) => x.name),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(
      m2.list().map((x) => x.name),
      ['a', 'b', 'c'],
    );
    assert.equal(m1.accept(admB), 'known');
  });

  it('rejects forged records: bad member signature, countersigned by a stranger, by a wrong admin', () => {
    const admin = generateSigner().signer;
    const m = fresh(admin);
    const [a, b, stranger] = [node(), node(), node()];
    m.accept(admission(a, 'a', 'admin', admin));
    const good = admission(b, 'b', a, admin);
    const tampered = {
      ...good,
      member: { ...good.member, s: good.member.s.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A')) },
    };
    assert.equal(m.accept(tampered), 'rejected');
    const wrongCounter = { ...good, bs: admission(b, 'b', stranger, admin).bs };
    assert.equal(m.accept(wrongCounter), 'rejected');
    const otherAdmin = generateSigner().signer;
    assert.equal(m.accept(admission(b, 'b', 'admin', otherAdmin)), 'rejected');
    assert.equal(m.accept({ garbage: true }), 'rejected');
    assert.equal(m.isMember(b.peerId), false);
  });

  it('resolves a name clash the same way on every node (earlier record wins)', () => {
    const admin = generateSigner().signer;
    const [a, x, y] = [node(), node(), node()];
    const admA = admission(a, 'a', 'admin', admin);
    const early = admission(x, 'web', a, admin, 1_000_000);
    const late = admission(y, 'web', a, admin, 2_000_000);
    const m1 = fresh(admin);
    const m2 = fresh(admin);
    m1.accept(admA);
    m2.accept(admA);
    m1.accept(early);
    m1.accept(late);
    m2.accept(late);
    m2.accept(early);
    assert.equal(m1.byName('web')?.peerId, x.peerId);
    assert.equal(m2.byName('web')?.peerId, x.peerId);
  });

  it('revocations need the admin key, win over admissions, and survive a reload', () => {
    const admin = generateSigner().signer;
    const db = openStore(':memory:', meshMigrations);
    const m = new Membership(db, admin.publicKey);
    const [a, b] = [node(), node()];
    m.accept(admission(a, 'a', 'admin', admin));
    const admB = admission(b, 'b', a, admin);
    m.accept(admB);
    const forged = signRevocation(
      { kind: 'node', subject: b.peerId, at: Date.now() },
      generateSigner().signer,
    );
    assert.equal(m.revoke(forged), false);
    assert.equal(m.isMember(b.peerId), true);
    const real = signRevocation({ kind: 'node', subject: b.peerId, at: Date.now() }, admin);
    assert.equal(m.revoke(real), true);
    assert.equal(m.revoke(real), false);
    assert.equal(m.isMember(b.peerId), false);
    assert.equal(m.isRevoked(b.peerId), true);
    // A reload (agent restart) keeps the verdict, and re-gossiped admissions do not undo it.
    const again = new Membership(db, admin.publicKey);
    assert.equal(again.isRevoked(b.peerId), true);
    assert.equal(again.accept(admB), 'rejected');
    // The name is free again for a new node.
    const c = node();
    assert.equal(again.accept(admission(c, 'b', a, admin)), 'added');
    // A revoked node's key cannot admit anyone after its revocation.
    const d = node();
    assert.equal(again.accept(admission(d, 'd', b, admin, Date.now() + 1000)), 'rejected');
    assert.equal(again.isMember(d.peerId), false);
  });

  it('snapshot/merge carries members, revocations and token use counts', () => {
    const admin = generateSigner().signer;
    const m1 = fresh(admin);
    const [a, b, c] = [node(), node(), node()];
    m1.accept(admission(a, 'a', 'admin', admin, Date.now(), 'init'));
    m1.accept(admission(b, 'b', a, admin, Date.now(), 'tok_AAAAAAAA'));
    m1.accept(admission(c, 'c', a, admin, Date.now(), 'tok_AAAAAAAA'));
    m1.revoke(signRevocation({ kind: 'token', subject: 'tok_BBBBBBBB', at: Date.now() }, admin));
    const m2 = fresh(admin);
    assert.equal(m2.merge(JSON.parse(JSON.stringify(m1.snapshot()))), 4);
    assert.equal(m2.tokenUses('tok_AAAAAAAA'), 2);
    assert.equal(m2.isTokenRevoked('tok_BBBBBBBB'), true);
    assert.equal(openMember(m2.snapshot().members[0].member).peerId.startsWith('12D3KooW'), true);
    assert.equal(m2.merge({ members: 'nope' }), 0);
  });

  it('resolves a live member by name or peer ID, and refuses unknown or revoked ones', () => {
    const admin = generateSigner().signer;
    const m = fresh(admin);
    const [a, b] = [node(), node()];
    m.accept(admission(a, 'a', 'admin', admin));
    m.accept(admission(b, 'b', a, admin));
    assert.equal(m.resolve('a').peerId, a.peerId);
    assert.equal(m.resolve(b.peerId).name, 'b');
    m.revoke(signRevocation({ kind: 'node', subject: b.peerId, at: Date.now() }, admin));
    assert.equal(
      codeOf(() => m.resolve('b')),
      'UNKNOWN_NODE',
    );
    assert.equal(
      codeOf(() => m.resolve(b.peerId)),
      'UNKNOWN_NODE',
    );
    assert.equal(
      codeOf(() => m.resolve('nobody')),
      'UNKNOWN_NODE',
    );
  });
});
