/**
 * The mesh does not depend on its first node: kill -9 it and the others keep seeing each other;
 * a node restarted while the first is down reaches the mesh through any known peer; the first
 * node comes back with its stored membership. Revocation drops a node everywhere within seconds
 * and survives restarts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Cluster, startCluster, type TestNode, waitFor } from '../helpers/cluster.ts';

interface Peer {
  name: string;
  state: string;
  connection: string;
}

const peersOf = (node: TestNode) => node.json<Peer[]>(['peers']);
const stateOf = async (node: TestNode, name: string) => (await peersOf(node)).find((p) => p.name === name);

describe('mesh: restarts and revocation', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(4, { env: { PLEXUS_TELEMETRY__INTERVAL_S: '0.5' } });
  });
  after(async () => cluster?.stop());

  it('survives kill -9 of the first node, and it rejoins with its stored membership', async () => {
    const [n1, n2, n3] = cluster.nodes;
    await n1.stop('SIGKILL');
    await waitFor(
      async () => (await stateOf(n2, 'n1'))?.connection === 'none',
      10_000,
      'n2 to notice n1 is gone',
    );
    // n3 restarts while n1 (its only bootstrap address) is down: it must find n2/n4 from the
    // addresses it stored.
    await n3.stop('SIGTERM');
    await n3.start();
    await waitFor(
      async () =>
        (await stateOf(n3, 'n2'))?.state === 'online' && (await stateOf(n3, 'n4'))?.state === 'online',
      20_000,
      'n3 back in the mesh without n1',
    );
    await waitFor(async () => (await stateOf(n2, 'n3'))?.state === 'online', 10_000, 'n2 to see n3 again');
    await waitFor(async () => (await stateOf(n2, 'n1'))?.state === 'down', 15_000, 'n1 down on n2');
    // n1 comes back from its own database: no token, same identity.
    await n1.start();
    await cluster.waitConverged(30_000);
  });

  it('revoke drops a node everywhere within seconds, also after restarts', async () => {
    const [n1, n2, , n4] = cluster.nodes;
    const started = Date.now();
    const r = await n1.run(['revoke', 'n4']);
    assert.equal(r.code, 0, r.stderr);
    for (const node of [n1, n2, cluster.nodes[2]]) {
      await waitFor(
        async () => !(await peersOf(node)).some((p) => p.name === 'n4'),
        10_000,
        `${node.name} to drop n4`,
      );
    }
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 10_000, `revocation took ${elapsed} ms`);
    // n4 can no longer talk to anyone: its view turns to no connections.
    await waitFor(
      async () => (await peersOf(n4)).every((p) => p.connection === 'none'),
      10_000,
      'n4 isolated',
    );

    // Restart n2 and the revoked node: still refused.
    await n2.stop('SIGKILL');
    await n2.start();
    await n4.stop('SIGKILL');
    await n4.start();
    await new Promise((res) => setTimeout(res, 4000));
    assert.equal(
      (await peersOf(n2)).some((p) => p.name === 'n4'),
      false,
    );
    assert.ok(
      (await peersOf(n4)).every((p) => p.connection === 'none'),
      'revoked node reconnected',
    );
    // The rest of the mesh is whole.
    cluster.nodes.splice(3, 1);
    await n4.stop('SIGKILL');
    await cluster.waitConverged(20_000);
  });

  it('only the admin node can revoke, and never itself', async () => {
    const r = await cluster.nodes[1].run(['revoke', 'n3']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs the admin key/);
    const self = await cluster.nodes[0].run(['revoke', 'n1']);
    assert.equal(self.code, 1);
  });
});
