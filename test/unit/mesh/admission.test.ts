/** The join door's checks on a fresh join, its rate limit and its listen addresses. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { admitJoin } from '../../../src/mesh/admission.ts';
import { DoorLimiter, doorListenAddrs } from '../../../src/mesh/door.ts';
import { signRevocation } from '../../../src/mesh/records.ts';
import { identity, testNetwork } from '../../helpers/admissions.ts';
import { codeOf } from '../../helpers/errors.ts';

const nowS = () => Math.floor(Date.now() / 1000);

describe('join door', () => {
  it('admits a fresh join once, and a retried join again (idempotent)', () => {
    const net = testNetwork();
    const membership = net.membership();
    const c = { membership, adminPublicKey: net.admin.publicKey };
    const j = identity();
    const adm = net.admit(j, 'j');
    assert.deepEqual(admitJoin(c, j.peerId, adm), adm);
    assert.equal(membership.isMember(j.peerId), true);
    assert.deepEqual(admitJoin(c, j.peerId, adm), adm);
  });

  it('refuses a record of another peer, an expired or revoked token, a skewed clock, a used-up token', () => {
    const net = testNetwork();
    const membership = net.membership();
    const c = { membership, adminPublicKey: net.admin.publicKey };
    const j = identity();
    assert.equal(
      codeOf(() => admitJoin(c, identity().peerId, net.admit(j, 'j'))),
      'PEER_MISMATCH',
    );
    const expired = net.token({ iat: nowS() - 600, exp: nowS() - 1 }).decoded;
    assert.equal(
      codeOf(() => admitJoin(c, j.peerId, net.admit(j, 'j', { token: expired, at: Date.now() - 10_000 }))),
      'TOKEN_EXPIRED',
    );
    const revoked = net.token().decoded;
    membership.revoke(
      signRevocation({ kind: 'token', subject: revoked.payload.id, at: Date.now() }, net.admin),
    );
    assert.equal(
      codeOf(() => admitJoin(c, j.peerId, net.admit(j, 'j', { token: revoked, at: Date.now() - 1000 }))),
      'TOKEN_REVOKED',
    );
    assert.equal(
      codeOf(() =>
        admitJoin(
          c,
          j.peerId,
          net.admit(j, 'j', {
            token: net.token({ iat: nowS() - 3600 }).decoded,
            at: Date.now() - 10 * 60_000,
          }),
        ),
      ),
      'CLOCK_SKEW',
    );
    const once = net.token({ uses: 1 }).decoded;
    admitJoin(c, j.peerId, net.admit(j, 'j', { token: once }));
    const k = identity();
    assert.equal(
      codeOf(() => admitJoin(c, k.peerId, net.admit(k, 'k', { token: once }))),
      'TOKEN_USED_UP',
    );
    assert.equal(
      codeOf(() => admitJoin(c, k.peerId, { garbage: 1 })),
      'MALFORMED',
    );
    assert.equal(membership.isMember(k.peerId), false);
  });

  it('rate-limits attempts per source address, and remembers a bounded number of sources', () => {
    const limiter = new DoorLimiter(3, 1000);
    const t = 1_000_000;
    assert.deepEqual(
      [1, 2, 3, 4].map(() => limiter.allow('10.0.0.1', t)),
      [true, true, true, false],
    );
    assert.equal(limiter.allow('10.0.0.2', t), true, 'another address has its own budget');
    assert.equal(limiter.allow('10.0.0.1', t + 1000), true, 'one attempt back per refill');
    assert.equal(limiter.allow('10.0.0.1', t + 1000), false);
    for (let i = 0; i < 10_000; i++) limiter.allow(`192.168.${i >> 8}.${i & 255}`, t);
  });

  it('listens beside the mesh: 7073 next to the default port, an ephemeral one otherwise', () => {
    assert.deepEqual(doorListenAddrs('auto', ['/ip4/0.0.0.0/tcp/7070', '/ip6/::/tcp/7070']), [
      '/ip4/0.0.0.0/tcp/7073',
      '/ip6/::/tcp/7073',
    ]);
    assert.deepEqual(doorListenAddrs('auto', ['/ip4/127.0.0.1/tcp/40001']), ['/ip4/127.0.0.1/tcp/0']);
    assert.deepEqual(doorListenAddrs('off', ['/ip4/0.0.0.0/tcp/7070']), []);
    assert.deepEqual(doorListenAddrs(['/ip4/10.0.0.1/tcp/9000'], []), ['/ip4/10.0.0.1/tcp/9000']);
  });
});
