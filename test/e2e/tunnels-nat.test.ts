/**
 * A tunnel to a node behind NAT takes the fast path with no relay (issue 14): the NAT'd node
 * can dial out but nothing can dial it, so the client's direct dial of its data port fails, and
 * it asks the NAT'd node over the mesh stream to dial its own data listener instead (a reverse
 * connection, docs/tunnels.md). Built in network namespaces (root, iproute2, iptables);
 * skipped with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, waitFor } from '../helpers/cluster.ts';
import {
  createNatTopology,
  doorPort,
  type NatTopology,
  type NsNode,
  natUnavailable,
  nsNode,
} from '../helpers/netns.ts';

const PEER = join(ROOT, 'test', 'fixtures', 'tcp-peer.ts');
const skip = natUnavailable();
const ENTRY_DATA_PORT = 7493;

interface Tunnels {
  openedData: number;
  dataPaths: Record<string, string>;
}

describe('a tunnel to a node behind NAT (reverse data connection)', { skip, timeout: 300_000 }, () => {
  let topo: NatTopology;
  let root: string;
  const nodes: NsNode[] = [];
  const procs: ChildProcess[] = [];
  let entry: NsNode;
  let natted: NsNode;

  before(async () => {
    topo = createNatTopology();
    root = mkdtempSync(join(tmpdir(), 'plexus-tunnels-nat-'));
    entry = await nsNode(topo.pub, root, 'entry', topo.pubIp, 7403, 7413);
    natted = await nsNode(topo.nat, root, 'natted', topo.natIp, 7404, 7414);
    nodes.push(entry, natted);
    await entry.setup(['init'], 'off');
    await entry.start({ PLEXUS_TUNNELS__DATA_LISTEN: `${topo.pubIp}:${ENTRY_DATA_PORT}` });
    const tok = (await entry.run(['token', 'create', '--ttl', '10m'])).stdout.trim();
    // The NAT'd node dials out to the entry (mesh, door, data port); nothing dials in.
    topo.allowEgress([7403, doorPort(7403), ENTRY_DATA_PORT]);
    await natted.setup(['join', tok], 'off');
    await natted.start();
    await waitFor(
      async () => {
        const peers = await entry.json<{ name: string }[]>(['peers']);
        return peers.some((p) => p.name === 'natted');
      },
      90_000,
      'entry to see natted',
      500,
    );
  });
  after(async () => {
    for (const p of procs) p.kill();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    topo?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('a forward to the NAT’d node’s service rides a data connection it dialled back, 64 MiB intact', async () => {
    const MiB64 = 64 * 1024 * 1024;
    const src = spawn(
      'ip',
      ['netns', 'exec', topo.nat, process.execPath, PEER, 'source', '0', String(MiB64)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    procs.push(src);
    const port = await new Promise<number>((resolve) =>
      src.stdout?.once('data', (d) => resolve(Number(String(d)))),
    );
    assert.equal((await natted.run(['expose', 'src', String(port)])).code, 0);
    const f = await entry.json<{ listen: string }>(['forward', 'add', 'src.natted']);
    const sink = () =>
      new Promise<{ bytes: number; mbps: number }>((resolve, reject) =>
        execFile(
          'ip',
          [
            'netns',
            'exec',
            topo.pub,
            process.execPath,
            PEER,
            'sink',
            '127.0.0.1',
            f.listen.split(':').pop() ?? '',
            String(MiB64),
          ],
          { timeout: 120_000 },
          (err, stdout) =>
            err ? reject(new Error(stdout || err.message)) : resolve(JSON.parse(stdout.trim())),
        ),
      );
    // The first tunnel may ride the stream while the data path is found out.
    await sink();
    const tunnels = async () =>
      (await entry.json<{ tunnels: { tunnels: Tunnels } }>(['status'])).tunnels.tunnels;
    await waitFor(
      async () => Object.values((await tunnels()).dataPaths).includes('reverse'),
      30_000,
      'the data path to natted to be a reverse one',
      250,
    );
    const before = (await tunnels()).openedData;
    const got = await sink();
    assert.equal(got.bytes, MiB64);
    assert.equal((await tunnels()).openedData, before + 1, 'the tunnel took a data connection');
    console.log(`forward to a NAT'd node over a reverse data connection: ${got.mbps.toFixed(0)} MB/s`);
  });
});
