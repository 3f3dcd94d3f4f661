/** The config overrides of reachability, and what a connection's address says of its remote end. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { multiaddr } from '@multiformats/multiaddr';
import { parseConfig } from '../../../src/config/index.ts';
import { observedEndpoint } from '../../../src/mesh/dialback.ts';
import { reachOverride } from '../../../src/mesh/nat.ts';

const mesh = (m: Record<string, unknown>) => parseConfig({ node: { name: 'n' }, mesh: m }, 'test').mesh;

test('no override by default: dial-backs decide', () => {
  assert.equal(reachOverride(mesh({})), undefined);
});

test('--behind-nat (mesh.reachability), public, and older configs with mesh.reservations override', () => {
  assert.equal(reachOverride(mesh({ reachability: 'behind-nat' }))?.status, 'behind-nat');
  assert.match(reachOverride(mesh({ reachability: 'behind-nat' }))?.reason ?? '', /--behind-nat/);
  assert.equal(reachOverride(mesh({ reachability: 'public' }))?.status, 'public');
  assert.equal(reachOverride(mesh({ reservations: 2 }))?.status, 'behind-nat');
  assert.throws(() => mesh({ reachability: 'maybe' }));
});

test('observedEndpoint: the IP and port of a direct connection; nothing for a relayed one', () => {
  assert.deepEqual(
    observedEndpoint(
      multiaddr('/ip4/10.1.2.3/tcp/7070/p2p/12D3KooWFw5sCFq1vuiqkokdrYPpXcPU1QCFSmobsz1jqyyfnnCq'),
    ),
    {
      family: 'ip4',
      ip: '10.1.2.3',
      port: 7070,
    },
  );
  assert.deepEqual(observedEndpoint(multiaddr('/ip6/::1/tcp/1')), { family: 'ip6', ip: '::1', port: 1 });
  assert.equal(
    observedEndpoint(
      multiaddr(
        '/ip4/10.1.2.3/tcp/7070/p2p/12D3KooWFw5sCFq1vuiqkokdrYPpXcPU1QCFSmobsz1jqyyfnnCq/p2p-circuit',
      ),
    ),
    undefined,
  );
});
