/**
 * NAT (issue 5): a node in a network namespace behind a gateway that masquerades outbound
 * connections and drops inbound ones joins through a dialable node, holds reservations on two
 * relays, is managed through another node's HTTP API, and stays reachable through the second
 * relay when the first one dies. The gateway lets the NAT'd node open connections to the two
 * relays only, so every other node can reach it through a circuit relay and nothing else.
 * Needs root, iproute2 and iptables (installed with apt-get when missing); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/cluster.ts';
import {
  createNatTopology,
  doorPort,
  type NatTopology,
  type NsNode,
  natUnavailable,
  nsNode,
} from '../helpers/netns.ts';

const skip = natUnavailable();
if (skip) console.log(`# skipping NAT tests: ${skip}`);

describe('NAT: a node behind a masquerading gateway', { skip }, () => {
  let topo: NatTopology;
  let root: string;
  let r1: NsNode;
  let r2: NsNode;
  let entry: NsNode;
  let natted: NsNode;
  let opKey: string;
  const nodes: NsNode[] = [];
  const peerIds: Record<string, string> = {};

  before(async () => {
    topo = createNatTopology();
    root = mkdtempSync(join(tmpdir(), 'plexus-nat-'));
    r1 = await nsNode(topo.pub, root, 'r1', topo.pubIp, 7101, 7111);
    r2 = await nsNode(topo.pub, root, 'r2', topo.pubIp, 7102, 7112);
    entry = await nsNode(topo.pub, root, 'entry', topo.pubIp, 7103, 7113);
    natted = await nsNode(topo.nat, root, 'natted', topo.natIp, 7104, 7114);
    nodes.push(r1, r2, entry, natted);
    await r1.setup(['init']);
    await r1.start();
    const tok = await r1.run(['token', 'create', '--ttl', '10m', '--uses', '3']);
    assert.equal(tok.code, 0, tok.stderr);
    for (const n of [r2, entry]) {
      await n.setup(['join', tok.stdout.trim()]);
      await n.start();
    }
    // The NAT'd node may open connections to the two relays and nowhere else.
    topo.allowEgress([7101, 7102, doorPort(7101)]);
    // `--behind-nat` writes mesh.reachability: behind-nat into its config.
    await natted.setup(['join', tok.stdout.trim(), '--behind-nat']);
    await natted.start();
    for (const n of nodes) peerIds[n.name] = (await n.json<{ peerId: string }>(['status'])).peerId;
    opKey = join(root, 'op.key');
    assert.equal((await r1.run(['operator', 'keygen', '--out', opKey])).code, 0);
    const add = await r1.run(['operator', 'add', '--pub', `${opKey}.pub`, '--role', 'operator', '--exec']);
    assert.equal(add.code, 0, add.stderr);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    topo?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const viaEntry = (args: string[], timeoutMs = 30_000) =>
    entry.run(['--api', `http://${entry.api}`, '--key', opKey, ...args], { timeoutMs });

  it('cannot be dialled from outside, and reaches out only to the relays', () => {
    const connects = (ns: string, ip: string, port: number) =>
      spawnSync('ip', ['netns', 'exec', ns, 'timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`])
        .status === 0;
    assert.equal(connects(topo.pub, topo.natIp, 7104), false, 'inbound to the NAT’d node must be dropped');
    assert.equal(connects(topo.nat, topo.pubIp, 7101), true, 'outbound to a relay is allowed');
    assert.equal(connects(topo.nat, topo.pubIp, 7103), false, 'outbound to the entry node is not');
  });

  it('holds reservations on two relays', async () => {
    const circuits = (await waitFor(
      async () => {
        const s = await natted.json<{ addrs: string[] }>(['status']);
        const relays = new Set(
          s.addrs.filter((a) => a.includes('/p2p-circuit')).map((a) => a.split('/p2p/')[1]?.split('/')[0]),
        );
        return relays.size >= 2 ? relays : false;
      },
      60_000,
      'two relay reservations',
      500,
    )) as Set<string>;
    assert.ok(circuits.has(peerIds.r1) && circuits.has(peerIds.r2), [...circuits].join(' '));
  });

  it('is managed through another node’s API over a relayed path', async () => {
    const apps = (await waitFor(
      async () => {
        const r = await viaEntry(['apps', '--node', 'natted', '--json']);
        return r.code === 0 ? r : false;
      },
      45_000,
      'apps --node natted through the entry API',
      500,
    )) as { stdout: string };
    assert.deepEqual(JSON.parse(apps.stdout), []);
    const ex = await viaEntry(['exec', 'natted', '--', 'sh', '-c', 'echo $((6*7))']);
    assert.equal(ex.code, 0, ex.stderr);
    assert.equal(ex.stdout, '42\n');
    const peers = await entry.json<{ name: string; connection: string; state: string }[]>(['peers']);
    const p = peers.find((x) => x.name === 'natted');
    assert.ok(p && ['relayed', 'direct'].includes(p.connection), JSON.stringify(p));
    // The gateway forbids every path but the relays, so DCUtR cannot succeed here.
    assert.equal(p.connection, 'relayed');
  });

  it('is reachable through the other relay within 30 s when its relay dies', async () => {
    const peers = await entry.json<{ name: string; addrs: string[] }[]>(['peers']);
    const path = peers.find((x) => x.name === 'natted')!.addrs.find((a) => a.includes('/p2p-circuit'))!;
    const relayId = path.split('/p2p/')[1].split('/')[0];
    const dying = relayId === peerIds.r1 ? r1 : r2;
    await dying.stop('SIGKILL');
    const t0 = Date.now();
    await waitFor(
      async () => (await viaEntry(['exec', 'natted', '--', 'true'], 10_000)).code === 0,
      30_000,
      `natted through the surviving relay after ${dying.name} died`,
      250,
    );
    const took = Date.now() - t0;
    console.log(`# natted reachable again ${took} ms after ${dying.name} died`);
    assert.ok(took < 30_000);
  });

  it('goes direct once the gateway lets it reach the other node', async () => {
    topo.allowEgress([7103]);
    const t0 = Date.now();
    await waitFor(
      async () =>
        (await entry.json<{ name: string; connection: string }[]>(['peers'])).find((p) => p.name === 'natted')
          ?.connection === 'direct',
      60_000,
      'the entry node to see natted over a direct path',
      500,
    );
    console.log(`# natted direct ${Date.now() - t0} ms after the gateway allowed it`);
    const ex = await viaEntry(['exec', 'natted', '--', 'true']);
    assert.equal(ex.code, 0, ex.stderr);
  });
});
