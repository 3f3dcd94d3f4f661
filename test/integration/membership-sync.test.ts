/**
 * The membership sync between two real libp2p nodes on loopback: digests first on
 * /plexus/members/1.1.0, whole snapshots only when they differ (both ways), whole snapshots on
 * /plexus/members/1.0.0 with an older agent, and every record still checked when it comes in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/index.ts';
import { MEMBERS_DIGEST_PROTOCOL, MEMBERS_PROTOCOL } from '../../src/mesh/constants.ts';
import { jsonChannel } from '../../src/mesh/json-stream.ts';
import { generateNodeIdentity } from '../../src/mesh/keys.ts';
import type { Membership } from '../../src/mesh/membership.ts';
import { MembershipSync } from '../../src/mesh/membership-sync.ts';
import type { PlexusLibp2p } from '../../src/mesh/node.ts';
import { peerIdOf } from '../../src/mesh/peer-ids.ts';
import { signRevocation } from '../../src/mesh/records.ts';
import { TelemetryBus } from '../../src/mesh/telemetry.ts';
import { identity, type TestIdentity, testNetwork } from '../helpers/admissions.ts';
import { loopbackNode } from '../helpers/libp2p-nodes.ts';

interface Side {
  who: TestIdentity;
  node: PlexusLibp2p;
  membership: Membership;
  sync: MembershipSync;
  telemetry: string[];
}

describe('membership sync', () => {
  const net = testNetwork();
  const sides: Side[] = [];
  const make = async (): Promise<Side> => {
    const id = generateNodeIdentity();
    const who = { id, peerId: peerIdOf(id.publicKey) };
    const node = await loopbackNode({}, id.protobuf);
    const membership = net.membership();
    const telemetry: string[] = [];
    const side: Side = { who, node, membership, telemetry, sync: undefined as unknown as MembershipSync };
    // Our latest record rides along with every sync message: what shows an exchange happened.
    const bus = new TelemetryBus(silentLogger());
    const base = { node: 'n', peerId: who.peerId, version: 't', uptimeS: 1, reach: 'direct' } as const;
    await bus.build(base);
    side.sync = new MembershipSync({
      node,
      membership,
      telemetry: bus,
      logger: silentLogger(),
      acceptTelemetry: (from) => void telemetry.push(from),
    });
    await node.handle(MEMBERS_PROTOCOL, (s, c) => side.sync.serve(s, c));
    await node.handle(MEMBERS_DIGEST_PROTOCOL, (s, c) => side.sync.serveDigest(s, c));
    sides.push(side);
    return side;
  };
  let a: Side;
  let b: Side;
  before(async () => {
    [a, b] = [await make(), await make()];
    const both = [net.admit(a.who, 'a'), net.admit(b.who, 'b')];
    for (const s of [a, b]) for (const adm of both) assert.equal(s.membership.accept(adm), 'added');
    await a.node.dial(b.node.getMultiaddrs()[0]);
  });
  after(async () => {
    for (const s of sides) await s.node.stop();
  });

  it('a settled pair swaps digests only: no snapshot is sent, nothing is merged', async () => {
    const [ka, kb] = [a.membership.checks.known, b.membership.checks.known];
    await a.sync.syncWith(b.node.peerId);
    await b.sync.syncWith(a.node.peerId);
    await waitUntil(() => a.telemetry.length === 2 && b.telemetry.length === 2);
    assert.deepEqual(a.telemetry, [b.who.peerId, b.who.peerId]);
    assert.equal(a.membership.checks.known, ka);
    assert.equal(b.membership.checks.known, kb);
  });

  it('pairs that differ swap whole snapshots both ways, each record checked on arrival', async () => {
    const [x, y] = [identity(), identity()];
    a.membership.accept(net.admit(x, 'x'));
    b.membership.accept(net.admit(y, 'y'));
    b.membership.revoke(signRevocation({ kind: 'node', subject: y.peerId, at: Date.now() }, net.admin));
    // A record only b holds, that no admin ever signed: b's table cannot hold it, so it is
    // planted in what b sends (a member relaying junk) and must be refused by a.
    const forged = testNetwork().admit(identity(), 'forged');
    const snapshot = b.membership.snapshot.bind(b.membership);
    b.membership.snapshot = () => {
      const s = snapshot();
      return { ...s, members: [...s.members, forged] };
    };
    const va = a.membership.checks.verified;
    try {
      await a.sync.syncWith(b.node.peerId);
    } finally {
      b.membership.snapshot = snapshot;
    }
    // The answering side merges once the exchange is over.
    await waitUntil(() => b.membership.isMember(x.peerId));
    assert.equal(a.membership.isRevoked(y.peerId), true);
    assert.equal(a.membership.get(y.peerId), undefined, 'y came after its revocation: refused');
    assert.equal(a.membership.byName('forged'), undefined);
    assert.equal(a.membership.checks.verified, va + 2, 'y and the forged record, each checked in full');
    // Converged (y's admission, which only b holds, is left out of both digests): the next
    // sync is digests only again.
    const kb = b.membership.checks.known;
    await a.sync.syncWith(b.node.peerId);
    assert.equal(b.membership.checks.known, kb);
  });

  it('syncs with an older agent that speaks only /plexus/members/1.0.0, both ways', async () => {
    const z = identity();
    await b.node.unhandle(MEMBERS_DIGEST_PROTOCOL);
    try {
      a.membership.accept(net.admit(z, 'z'));
      await a.sync.syncWith(b.node.peerId);
      await waitUntil(() => b.membership.isMember(z.peerId));
      // An older agent asks with its whole snapshot and gets ours.
      const w = identity();
      b.membership.accept(net.admit(w, 'w'));
      const held = a.membership.snapshot().members.length;
      const stream = await b.node.dialProtocol(a.node.peerId, MEMBERS_PROTOCOL);
      const ch = jsonChannel(stream, 1 << 20);
      await ch.write(b.membership.snapshot());
      const theirs = (await ch.read(AbortSignal.timeout(5000))) as { members: unknown[] };
      assert.equal(theirs.members.length, held);
      await waitUntil(() => a.membership.isMember(w.peerId));
    } finally {
      await b.node.handle(MEMBERS_DIGEST_PROTOCOL, (s, c) => b.sync.serveDigest(s, c));
    }
  });

  it('tells a peer that is not a member nothing, digest or snapshot', async () => {
    const stranger = await make();
    for (const proto of [MEMBERS_DIGEST_PROTOCOL, MEMBERS_PROTOCOL]) {
      const stream = await stranger.node.dialProtocol(a.node.getMultiaddrs()[0], proto);
      const ch = jsonChannel(stream, 1 << 20);
      await ch.write({ digest: 'x' });
      await assert.rejects(ch.read(AbortSignal.timeout(5000)));
    }
  });
});

async function waitUntil(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
