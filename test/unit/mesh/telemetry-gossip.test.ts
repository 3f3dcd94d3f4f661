/**
 * The telemetry topic's check of each record, attacked: a member publishes only under its own
 * peer id and its own name (read from the membership in memory, not from its row), a stranger or
 * a revoked member not at all, and a record is kept only when it is newer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TopicValidatorResult } from '@libp2p/gossipsub';
import { silentLogger } from '../../../src/logging/index.ts';
import { signRevocation } from '../../../src/mesh/records.ts';
import { TelemetryBus } from '../../../src/mesh/telemetry.ts';
import { TelemetryGossip, type TelemetryGossipComponents } from '../../../src/mesh/telemetry-gossip.ts';
import { identity, testNetwork } from '../../helpers/admissions.ts';
import { sampleRecord } from '../../helpers/telemetry.ts';

const enc = (v: unknown) => Buffer.from(JSON.stringify(v));

function setup() {
  const net = testNetwork();
  const membership = net.membership();
  const [a, b] = [identity(), identity()];
  membership.accept(net.admit(a, 'web-1'));
  membership.accept(net.admit(b, 'web-2'));
  const telemetry = new TelemetryBus(silentLogger());
  const seen: string[] = [];
  const connected = new Set([a.peerId, b.peerId]);
  const learnt: [string, string[]][] = [];
  const gossip = new TelemetryGossip({
    membership,
    telemetry,
    directory: { seen: (id: string) => seen.push(id), isConnected: (id: string) => connected.has(id) },
    connector: { learnAddrs: async (id: string, addrs: string[]) => void learnt.push([id, addrs]) },
  } as unknown as TelemetryGossipComponents);
  return { net, membership, telemetry, gossip, a, b, seen, connected, learnt };
}

describe('telemetry gossip: checking a record', () => {
  it("keeps a member's own record, and only a newer one after it", () => {
    const { gossip, telemetry, a, seen } = setup();
    const rec = sampleRecord({ node: 'web-1', peerId: a.peerId, seq: 5 });
    assert.equal(gossip.accept(a.peerId, enc(rec)), TopicValidatorResult.Accept);
    assert.equal(telemetry.latest(a.peerId)?.seq, 5);
    assert.deepEqual(seen, [a.peerId]);
    assert.equal(gossip.accept(a.peerId, enc(rec)), TopicValidatorResult.Ignore);
    assert.equal(
      gossip.accept(a.peerId, enc({ ...rec, seq: 6, ts: rec.ts + 1 })),
      TopicValidatorResult.Accept,
    );
  });

  it('dials a member it is not connected to at the addresses its record gives, and only then', () => {
    const { gossip, a, connected, learnt } = setup();
    const addrs = ['/ip4/127.0.0.1/tcp/7070'];
    gossip.accept(a.peerId, enc(sampleRecord({ node: 'web-1', peerId: a.peerId, addrs, seq: 1 })));
    assert.deepEqual(learnt, []);
    connected.delete(a.peerId);
    gossip.accept(a.peerId, enc(sampleRecord({ node: 'web-1', peerId: a.peerId, addrs, seq: 2 })));
    assert.deepEqual(learnt, [[a.peerId, addrs]]);
  });

  it("refuses a member's record under another member's name or peer id", () => {
    const { gossip, telemetry, a, b } = setup();
    const asB = sampleRecord({ node: 'web-2', peerId: a.peerId });
    const forB = sampleRecord({ node: 'web-2', peerId: b.peerId });
    assert.equal(gossip.accept(a.peerId, enc(asB)), TopicValidatorResult.Reject);
    assert.equal(gossip.accept(a.peerId, enc(forB)), TopicValidatorResult.Reject);
    assert.equal(telemetry.latest(a.peerId), undefined);
    assert.equal(telemetry.latest(b.peerId), undefined);
    assert.equal(telemetry.counts.rejected.forged, 2);
  });

  it('refuses a stranger, a revoked member and a malformed record', () => {
    const { net, membership, gossip, telemetry, a, b } = setup();
    const stranger = identity();
    const rec = sampleRecord({ node: 'web-9', peerId: stranger.peerId });
    assert.equal(gossip.accept(stranger.peerId, enc(rec)), TopicValidatorResult.Reject);
    membership.revoke(signRevocation({ kind: 'node', subject: b.peerId, at: Date.now() }, net.admin));
    const fromB = sampleRecord({ node: 'web-2', peerId: b.peerId });
    assert.equal(gossip.accept(b.peerId, enc(fromB)), TopicValidatorResult.Reject);
    assert.equal(telemetry.counts.rejected['not-member'], 2);
    assert.equal(gossip.accept(a.peerId, Buffer.from('{"node":')), TopicValidatorResult.Reject);
    assert.equal(telemetry.counts.rejected.malformed, 1);
  });
});
