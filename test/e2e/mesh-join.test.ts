import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Cluster, startCluster, waitFor } from '../helpers/cluster.ts';

describe('mesh: five nodes join with tokens', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(5, { env: { PLEXUS_TELEMETRY__INTERVAL_S: '1' } });
  });
  after(async () => cluster?.stop());

  it('every node sees every other online with a direct path', async () => {
    for (const node of cluster.nodes) {
      const peers = await node.json<{ name: string; state: string; connection: string; peerId: string }[]>([
        'peers',
      ]);
      assert.deepEqual(
        peers.map((p) => p.name).sort(),
        cluster.nodes
          .filter((x) => x !== node)
          .map((x) => x.name)
          .sort(),
      );
      for (const p of peers) {
        assert.equal(p.state, 'online', `${node.name} sees ${p.name} ${p.state}`);
        assert.equal(p.connection, 'direct');
        assert.match(p.peerId, /^12D3KooW/);
      }
    }
  });

  it('peers shows the round-trip time of every connection from the start', async () => {
    // No `plexus ping` has run yet, and libp2p's own monitor waits 30 s before its first one.
    await waitFor(
      async () => {
        const peers = await cluster.nodes[0].json<{ rttMs: number | null }[]>(['peers']);
        return peers.every((p) => typeof p.rttMs === 'number' && p.rttMs >= 0 && p.rttMs < 1000);
      },
      10_000,
      'an RTT for every peer',
    );
  });

  it('ping reports round-trip times', async () => {
    const r = await cluster.nodes[4].json<{ sent: number; received: number; rttMs: number[] }>([
      'ping',
      'n1',
      '-c',
      '2',
    ]);
    assert.equal(r.sent, 2);
    assert.equal(r.received, 2);
    assert.ok(r.rttMs.every((ms) => ms >= 0 && ms < 1000));
  });
});
