/**
 * The membership rules, attacked (issue 12): every node checks an admission back to the admin
 * key on its own; a member's node key, a backdated record, an old token or a revoked node's key
 * mints nothing; token uses and names are judged the same way by every node.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { b64u, generateSigner } from '../../../src/crypto/ed25519.ts';
import { CLOCK_ALLOWANCE_MS, SETTLE_MS } from '../../../src/mesh/constants.ts';
import { Membership } from '../../../src/mesh/membership.ts';
import { meshMigrations } from '../../../src/mesh/migrations.ts';
import { openMember, signMember, signRevocation } from '../../../src/mesh/records.ts';
import { openStore } from '../../../src/store/index.ts';
import { identity, testNetwork } from '../../helpers/admissions.ts';
import { codeOf } from '../../helpers/errors.ts';

const HOUR = 3600;
const nowS = () => Math.floor(Date.now() / 1000);

describe('membership', () => {
  it('accepts admissions in any order and converges', () => {
    const net = testNetwork();
    const [a, b, c] = [identity(), identity(), identity()];
    const adms = [net.admit(a, 'a'), net.admit(b, 'b'), net.admit(c, 'c')];
    const m1 = net.membership();
    const m2 = net.membership();
    for (const adm of adms) assert.equal(m1.accept(adm), 'added');
    for (const adm of [...adms].reverse()) assert.equal(m2.accept(adm), 'added');
    assert.deepEqual(
      m1.list().map((x) => x.name),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(
      m2.list().map((x) => x.name),
      ['a', 'b', 'c'],
    );
    assert.equal(m1.accept(adms[1]), 'known');
  });

  it('checks an admission in full once: an identical copy is known, a changed or forged one is checked', () => {
    const net = testNetwork();
    const m = net.membership();
    const [a, b] = [identity(), identity()];
    const adm = net.admit(a, 'a');
    assert.equal(m.accept(adm), 'added');
    assert.deepEqual(m.checks, { verified: 1, known: 0 });
    // Gossip repeats, and every sync carries it again: not verified again.
    assert.equal(m.accept(structuredClone(adm)), 'known');
    assert.equal(m.merge({ members: [adm, structuredClone(adm)], revocations: [] }), 0);
    assert.deepEqual(m.checks, { verified: 1, known: 3 });
    // The same signatures over a changed record (another name): checked in full, and refused.
    const renamed = signMember({ ...openMember(adm.member), name: 'b' }, a.id.signer);
    const changed = { ...adm, member: { ...renamed, s: adm.member.s } };
    assert.equal(m.judge(changed).result, 'rejected');
    assert.equal(m.merge({ members: [changed], revocations: [] }), 0);
    assert.equal(m.checks.verified, 3);
    // A forged admission (a certificate the admin never signed) is refused every time it comes.
    const forged = testNetwork().admit(b, 'b');
    assert.equal(m.accept(forged), 'rejected');
    assert.equal(m.accept(forged), 'rejected');
    assert.equal(m.checks.verified, 5);
    assert.equal(m.isMember(b.peerId), false);
    assert.deepEqual(
      m.list().map((x) => x.name),
      ['a'],
    );
  });

  it('a member cannot mint an admission without a token: its node key signs nothing that counts', () => {
    const net = testNetwork();
    const [evil, victim] = [identity(), identity()];
    const m = net.membership();
    m.accept(net.admit(evil, 'evil'));
    // The old attack: a record for a new node, countersigned by a member, with a made-up token id.
    const record = signMember(
      { peerId: victim.peerId, name: 'web-2', tags: [], tokenId: 'made-up-1234', at: 1 },
      victim.id.signer,
    );
    const oldStyle = { member: record, by: evil.peerId, bs: b64u(evil.id.signer.sign(Buffer.from('x'))) };
    assert.equal(m.accept(oldStyle), 'rejected');
    // The new form with the member's own key in place of a token key: a certificate the admin
    // never signed (signed by evil), or a real token's certificate with evil's signature.
    const real = net.token().decoded;
    const selfMade = testNetwork(generateSigner().signer).token().decoded;
    for (const token of [
      { cert: selfMade.cert, key: selfMade.key },
      { cert: real.cert, key: evil.id.signer },
    ]) {
      const v = m.judge(net.admit(victim, 'web-2', { token: { ...real, ...token } }));
      assert.equal(v.result, 'rejected');
    }
    assert.equal(m.isMember(victim.peerId), false);
    assert.equal(m.byName('web-2'), undefined);
  });

  it('rejects tampered records: a member signature, a token signature, a certificate, a tag dropped', () => {
    const net = testNetwork();
    const m = net.membership();
    const b = identity();
    const tok = net.token({ tags: ['edge'] }).decoded;
    const good = net.admit(b, 'b', { token: tok });
    const flip = (s: string) => s.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A'));
    const bad: unknown[] = [
      { ...good, member: { ...good.member, s: flip(good.member.s) } },
      { ...good, ts: flip(good.ts) },
      { ...good, token: { ...good.token, s: flip(good.token.s) } },
      net.admit(b, 'b', { token: tok, tags: [] }),
      { garbage: true },
      { ...good, ts: 'x'.repeat(10_000) },
    ];
    for (const adm of bad) assert.equal(m.accept(adm), 'rejected');
    assert.equal(m.isMember(b.peerId), false);
    assert.equal(m.accept(good), 'added');
  });

  it('a record dated outside its token lifetime is refused (no backdating before iat)', () => {
    const net = testNetwork();
    const m = net.membership();
    const tok = net.token({ iat: nowS() - 60, exp: nowS() + HOUR }).decoded;
    const x = identity();
    assert.equal(m.judge(net.admit(x, 'x', { token: tok, at: 1 })).result, 'rejected');
    assert.equal(
      m.judge(net.admit(x, 'x', { token: tok, at: (nowS() + HOUR) * 1000 + 2 * CLOCK_ALLOWANCE_MS })).result,
      'rejected',
    );
  });

  it('a record first seen long after its token expired is refused by a node that was in touch', () => {
    const net = testNetwork();
    const now = Date.now();
    const exp = Math.floor(now / 1000) - 3600;
    const tok = net.token({ iat: exp - 600, exp }).decoded;
    const late = net.admit(identity(), 'late', { token: tok, at: (exp - 300) * 1000 });
    const online = net.membership();
    online.inSync(now - 2 * 3600_000);
    const verdict = online.judge(late, now);
    assert.equal(verdict.result, 'rejected');
    assert.equal(verdict.result === 'rejected' && verdict.error.code, 'LATE_ADMISSION');
    assert.equal(online.conflicts()[0]?.code, 'LATE_ADMISSION');
    // A node that was not running then (it is catching up) accepts it on its signatures.
    assert.equal(net.membership().accept(late, now), 'added');
  });

  it('an admission signed after its token was revoked is refused, and a revoked node stays out', () => {
    const net = testNetwork();
    const m = net.membership();
    const tok = net.token({ uses: 5 }).decoded;
    const [a, b] = [identity(), identity()];
    const admA = net.admit(a, 'a', { token: tok, at: Date.now() - 10_000 });
    assert.equal(m.accept(admA), 'added');
    m.revoke(signRevocation({ kind: 'token', subject: tok.payload.id, at: Date.now() - 5_000 }, net.admin));
    assert.equal(m.accept(net.admit(b, 'b', { token: tok })), 'rejected');
    m.revoke(signRevocation({ kind: 'node', subject: a.peerId, at: Date.now() }, net.admin));
    assert.equal(m.isMember(a.peerId), false);
    // Its admission, re-gossiped, does not bring it back.
    assert.equal(m.accept(admA), 'known');
    assert.equal(m.isMember(a.peerId), false);
  });

  it('never lets gossip take a settled name: the holder stays, the claim is refused and reported', () => {
    const net = testNetwork();
    const m = net.membership();
    const [real, evil] = [identity(), identity()];
    const t0 = Date.now();
    assert.equal(m.accept(net.admit(real, 'web-2', { at: t0 }), t0), 'added');
    const conflicts: string[] = [];
    m.on('conflict', (c) => conflicts.push(c.code));
    // An older-dated claim arriving once the holder settled: refused, even though it is "earlier".
    const later = t0 + SETTLE_MS + 1000;
    const claim = net.admit(evil, 'web-2', { at: t0 - 60_000 });
    const v = m.judge(claim, later);
    assert.equal(v.result === 'rejected' && v.error.code, 'NAME_TAKEN');
    assert.equal(m.byName('web-2')?.peerId, real.peerId);
    assert.deepEqual(conflicts, ['NAME_TAKEN']);
    assert.equal(m.conflicts()[0].name, 'web-2');
    // Judged once: delivered again, it stays refused and is not reported twice.
    assert.equal(m.accept(claim, later + 1), 'rejected');
    assert.deepEqual(conflicts, ['NAME_TAKEN']);
    assert.equal(m.snapshot().members.length, 1, 'a refused claim is never passed on');
  });

  it('decides a race for one name the same way on every node (earlier record wins)', () => {
    const net = testNetwork();
    const [x, y] = [identity(), identity()];
    const now = Date.now();
    const early = net.admit(x, 'web', { at: now - 2000 });
    const late = net.admit(y, 'web', { at: now - 1000 });
    const m1 = net.membership();
    const m2 = net.membership();
    m1.accept(early, now);
    m1.accept(late, now);
    m2.accept(late, now);
    const lost: string[] = [];
    m2.on('lost', (l) => lost.push(l.peerId));
    m2.accept(early, now + 10);
    assert.equal(m1.byName('web')?.peerId, x.peerId);
    assert.equal(m2.byName('web')?.peerId, x.peerId);
    assert.deepEqual(lost, [y.peerId]);
    assert.equal(m2.isMember(y.peerId), false);
    // The in-memory names telemetry checks records against follow the race too.
    assert.equal(m2.liveName(x.peerId), 'web');
    assert.equal(m2.liveName(y.peerId), undefined);
  });

  it('counts a token’s uses across the mesh: two doors at once, one winner everywhere', () => {
    const net = testNetwork();
    const tok = net.token({ uses: 1 }).decoded;
    const [p, q] = [identity(), identity()];
    const now = Date.now();
    const viaN1 = net.admit(p, 'p', { token: tok, at: now - 500 });
    const viaN2 = net.admit(q, 'q', { token: tok, at: now - 400 });
    // n1 admitted p, n2 admitted q; then each learns the other's.
    const n1 = net.membership();
    const n2 = net.membership();
    const n3 = net.membership();
    n1.accept(viaN1, now);
    n2.accept(viaN2, now);
    n1.accept(viaN2, now + 50);
    n2.accept(viaN1, now + 50);
    n3.merge(JSON.parse(JSON.stringify({ members: [viaN2, viaN1], revocations: [] })), now + 60);
    for (const n of [n1, n2, n3]) {
      assert.deepEqual(
        n.list().map((x) => x.name),
        ['p'],
      );
      assert.equal(n.tokenUses(tok.payload.id), 1);
    }
    // Once settled, a leaked used-up token cannot displace the holder with an earlier date.
    const r = identity();
    const v = n1.judge(net.admit(r, 'r', { token: tok, at: now - 100_000 }), now + SETTLE_MS + 1);
    assert.equal(v.result === 'rejected' && v.error.code, 'TOKEN_USED_UP');
  });

  it('a peer has one admission: a second one under another name is not merged', () => {
    const net = testNetwork();
    const m = net.membership();
    const a = identity();
    m.accept(net.admit(a, 'a'));
    assert.notEqual(m.accept(net.admit(a, 'other')), 'added');
    assert.equal(m.resolve(a.peerId).name, 'a');
  });

  it('revocations need the admin key, win over admissions, survive a reload and free the name', () => {
    const net = testNetwork();
    const db = openStore(':memory:', meshMigrations);
    const m = new Membership(db, net.admin.publicKey);
    const b = identity();
    const admB = net.admit(b, 'b');
    m.accept(admB);
    const forged = signRevocation(
      { kind: 'node', subject: b.peerId, at: Date.now() },
      generateSigner().signer,
    );
    assert.equal(m.revoke(forged), false);
    assert.equal(m.isMember(b.peerId), true);
    assert.equal(m.liveName(b.peerId), 'b');
    const real = signRevocation({ kind: 'node', subject: b.peerId, at: Date.now() }, net.admin);
    assert.equal(m.revoke(real), true);
    assert.equal(m.revoke(real), false);
    assert.equal(m.isRevoked(b.peerId), true);
    const again = new Membership(db, net.admin.publicKey);
    assert.equal(again.isRevoked(b.peerId), true);
    assert.equal(again.isMember(b.peerId), false);
    assert.equal(m.liveName(b.peerId), undefined);
    assert.equal(again.liveName(b.peerId), undefined);
    const b2 = identity();
    assert.equal(again.accept(net.admit(b2, 'b')), 'added');
    assert.equal(again.liveName(b2.peerId), 'b');
    assert.equal(new Membership(db, net.admin.publicKey).liveName(b2.peerId), 'b');
  });

  it('snapshot/merge carries members, revocations and token use counts', () => {
    const net = testNetwork();
    const m1 = net.membership();
    const tok = net.token({ uses: 3 }).decoded;
    m1.accept(net.admit(identity(), 'a'));
    m1.accept(net.admit(identity(), 'b', { token: tok }));
    m1.accept(net.admit(identity(), 'c', { token: tok }));
    m1.revoke(signRevocation({ kind: 'token', subject: 'tok_BBBBBBBB', at: Date.now() }, net.admin));
    const m2 = net.membership();
    assert.equal(m2.merge(JSON.parse(JSON.stringify(m1.snapshot()))), 4);
    assert.equal(m2.tokenUses(tok.payload.id), 2);
    assert.equal(m2.isTokenRevoked('tok_BBBBBBBB'), true);
    assert.equal(openMember(m2.snapshot().members[0].member).peerId.startsWith('12D3KooW'), true);
    assert.equal(m2.merge({ members: 'nope' }), 0);
  });

  it('refuses to open a data dir whose members were admitted the old way', () => {
    const net = testNetwork();
    const db = openStore(':memory:', meshMigrations);
    const a = identity();
    const legacy = {
      member: signMember({ peerId: a.peerId, name: 'a', tags: [], tokenId: 'init', at: 1 }, a.id.signer),
      by: 'admin',
      bs: 'x',
    };
    db.prepare(
      `INSERT INTO members (peer_id, name, token_id, joined_at, admitted_by, admission) VALUES (?, 'a', 'init', 1, 'admin', ?)`,
    ).run(a.peerId, JSON.stringify(legacy));
    assert.equal(
      codeOf(() => new Membership(db, net.admin.publicKey)),
      'MEMBERSHIP_OUTDATED',
    );
  });

  it('resolves a live member by name or peer ID, and refuses unknown or revoked ones', () => {
    const net = testNetwork();
    const m = net.membership();
    const [a, b] = [identity(), identity()];
    m.accept(net.admit(a, 'a'));
    m.accept(net.admit(b, 'b'));
    assert.equal(m.resolve('a').peerId, a.peerId);
    assert.equal(m.resolve(b.peerId).name, 'b');
    m.revoke(signRevocation({ kind: 'node', subject: b.peerId, at: Date.now() }, net.admin));
    for (const who of ['b', b.peerId, 'nobody'])
      assert.equal(
        codeOf(() => m.resolve(who)),
        'UNKNOWN_NODE',
      );
  });
});
