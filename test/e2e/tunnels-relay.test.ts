/**
 * The relayed path (issue 6): a node behind a NAT that drops every inbound connection exposes
 * a service; another node reaches it through a forward and through SOCKS, over the circuit
 * relay of a dialable member. The relay itself, which the NAT'd node can dial, reaches it on
 * the fast path with no relay (issue 14): its direct dial of the NAT'd node's data port fails,
 * so it asks the NAT'd node to dial its data listener back (a reverse connection). Built in
 * network namespaces (root, iproute2, iptables); skipped with the reason otherwise.
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
/** r1's data listener port: the NAT'd node may dial it. */
const R1_DATA_PORT = 7491;

/** The tunnel counters of a node's `status --json`. */
async function tunnelsOf(n: NsNode): Promise<{ openedData: number; dataPaths: Record<string, string> }> {
  return (
    await n.json<{ tunnels: { tunnels: { openedData: number; dataPaths: Record<string, string> } } }>([
      'status',
    ])
  ).tunnels.tunnels;
}

/** Starts a TCP peer (echo/source) inside `ns`; resolves with its port. */
async function peer(ns: string, args: string[], procs: ChildProcess[]): Promise<number> {
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, PEER, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push(p);
  return new Promise((resolve, reject) => {
    p.stdout?.once('data', (d) => resolve(Number(String(d).trim())));
    p.once('exit', (code) => reject(new Error(`tcp peer exited ${code}`)));
  });
}

/** Runs a one-shot TCP peer (sink/latency) inside `ns` and parses its JSON answer. */
function run<T>(ns: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', ns, process.execPath, PEER, ...args],
      { timeout: 120_000 },
      (err, stdout) => {
        if (err) reject(new Error(`${args[0]}: ${stdout || err.message}`));
        else resolve(JSON.parse(stdout.trim()) as T);
      },
    );
  });
}

describe('tunnels through a circuit relay', { skip, timeout: 300_000 }, () => {
  let topo: NatTopology;
  let root: string;
  const nodes: NsNode[] = [];
  const procs: ChildProcess[] = [];
  let entry: NsNode;
  let natted: NsNode;
  let r1: NsNode;

  before(async () => {
    topo = createNatTopology();
    root = mkdtempSync(join(tmpdir(), 'plexus-tunnels-relay-'));
    r1 = await nsNode(topo.pub, root, 'r1', topo.pubIp, 7401, 7411);
    entry = await nsNode(topo.pub, root, 'entry', topo.pubIp, 7403, 7413);
    natted = await nsNode(topo.nat, root, 'natted', topo.natIp, 7404, 7414);
    nodes.push(r1, entry, natted);
    await r1.setup(['init'], 'off');
    await r1.start({ PLEXUS_TUNNELS__DATA_LISTEN: `${topo.pubIp}:${R1_DATA_PORT}` });
    const tok = (await r1.run(['token', 'create', '--ttl', '10m', '--uses', '2'])).stdout.trim();
    await entry.setup(['join', tok], '127.0.0.1:7472');
    await entry.start();
    // The NAT'd node may only reach the relay (its mesh, door and data ports); nothing can dial it.
    topo.allowEgress([7401, doorPort(7401), R1_DATA_PORT]);
    await natted.setup(['join', tok], 'off');
    await natted.start({ PLEXUS_MESH__RESERVATIONS: '1' });
    await waitFor(
      async () => {
        const peers = await entry.json<{ name: string; connection: string }[]>(['peers']);
        return peers.find((p) => p.name === 'natted')?.connection === 'relayed';
      },
      90_000,
      'entry to reach natted through the relay',
      500,
    );
  });
  after(async () => {
    for (const p of procs) p.kill();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    topo?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('a forward to a NAT’d node’s service works and carries 64 MiB intact', async () => {
    const MiB64 = 64 * 1024 * 1024;
    const src = await peer(topo.nat, ['source', '0', String(MiB64)], procs);
    const echo = await peer(topo.nat, ['echo', '0'], procs);
    assert.equal((await natted.run(['expose', 'src', String(src)])).code, 0);
    assert.equal((await natted.run(['expose', 'echo', String(echo)])).code, 0);
    const f = await entry.json<{ listen: string }>(['forward', 'add', 'src.natted']);
    const got = await run<{ bytes: number; ok: boolean; mbps: number }>(topo.pub, [
      'sink',
      '127.0.0.1',
      f.listen.split(':').pop() ?? '',
      String(MiB64),
    ]);
    assert.equal(got.bytes, MiB64);
    console.log(`relayed forward: ${got.mbps.toFixed(0)} MB/s`);
    const e = await entry.json<{ listen: string }>(['forward', 'add', 'echo.natted']);
    const lat = await run<{ p50: number }>(topo.pub, [
      'latency',
      '127.0.0.1',
      e.listen.split(':').pop() ?? '',
      '20',
    ]);
    assert.ok(lat.p50 > 0);
    const peers = await entry.json<{ name: string; connection: string }[]>(['peers']);
    assert.equal(peers.find((p) => p.name === 'natted')?.connection, 'relayed');
  });

  test('SOCKS5 reaches the NAT’d node’s service by name', async () => {
    const src = await peer(topo.nat, ['source', '0', '4096'], procs);
    await natted.run(['expose', 'bytes', String(src)]);
    const size = await new Promise<string>((resolve) => {
      execFile(
        'ip',
        [
          'netns',
          'exec',
          topo.pub,
          'curl',
          '-sS',
          '--max-time',
          '20',
          '--http0.9', // the service just sends 4096 bytes, no HTTP
          '-o',
          '/dev/null',
          '-w',
          '%{size_download}',
          '--socks5-hostname',
          '127.0.0.1:7472',
          'http://bytes.natted.plexus/',
        ],
        (_err, stdout) => resolve(stdout),
      );
    });
    assert.equal(size, '4096');
  });

  test('a forward from the relay to the NAT’d node rides a data connection it dialled back, 64 MiB intact', async () => {
    const MiB64 = 64 * 1024 * 1024;
    const src = await peer(topo.nat, ['source', '0', String(MiB64)], procs);
    assert.equal((await natted.run(['expose', 'big', String(src)])).code, 0);
    const f = await r1.json<{ listen: string }>(['forward', 'add', 'big.natted']);
    const sink = () =>
      run<{ bytes: number; mbps: number }>(topo.pub, [
        'sink',
        '127.0.0.1',
        f.listen.split(':').pop() ?? '',
        String(MiB64),
      ]);
    // The first tunnel may ride the stream while the data path is found out.
    await sink();
    await waitFor(
      async () => Object.values((await tunnelsOf(r1)).dataPaths).includes('reverse'),
      30_000,
      'r1 to reach natted by a reverse data connection',
      250,
    );
    const before = (await tunnelsOf(r1)).openedData;
    const got = await sink();
    assert.equal(got.bytes, MiB64);
    assert.equal((await tunnelsOf(r1)).openedData, before + 1, 'the tunnel took a data connection');
    console.log(`forward to a NAT'd node over a reverse data connection: ${got.mbps.toFixed(0)} MB/s`);
  });
});
