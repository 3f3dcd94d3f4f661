/**
 * Signed commands (issue 5).
 *
 *   node bench/commands.ts [--runs 200] [--exec-runs 20]
 *
 * 1. Command latency, p50/p99 over `--runs` `node.status` commands posted to an entry agent's
 *    HTTP API (signed, every reply frame verified), for three targets: the entry itself (local),
 *    a node it reaches over a direct connection (relayed once), and a node behind NAT reached
 *    through a circuit relay. The topology is built in network namespaces (needs root,
 *    iproute2, iptables); without them the circuit case is skipped with the reason.
 * 2. `plexus exec NODE -- true` as a whole process against `ssh` running `true` on a private
 *    sshd (Debian openssh-server on a loopback port, its own host key, key auth, config in a
 *    temp dir; the system sshd is not touched), alternating, `--exec-runs` each; prints medians
 *    and the ratio.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PLEXUS, ROOT, startCluster, waitFor } from '../test/helpers/cluster.ts';
import { createNatTopology, doorPort, type NsNode, natUnavailable, nsNode } from '../test/helpers/netns.ts';
import { privateSshd } from './private-sshd.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '200' }, 'exec-runs': { type: 'string', default: '20' } },
});
const runs = Number(values.runs);
const execRuns = Number(values['exec-runs']);
const NODE = process.execPath;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function runClient(ns: string | undefined, url: string, key: string, target: string) {
  const args = [
    NODE,
    '--disable-warning=ExperimentalWarning',
    join(ROOT, 'bench', 'command-client.ts'),
    url,
    key,
    target,
    String(runs),
  ];
  const out = ns
    ? execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' })
    : execFileSync(args[0], args.slice(1), { encoding: 'utf8' });
  return JSON.parse(out) as { p50: number; p99: number; mean: number };
}

async function latency(): Promise<void> {
  console.log(`\n== command latency: node.status, ${runs} runs each, signed + every frame verified ==`);
  const skip = natUnavailable();
  if (skip) {
    console.log(`(circuit-relay case skipped: ${skip}; measuring on loopback)`);
    const cluster = await startCluster(2);
    try {
      const root = cluster.root;
      const key = join(root, 'admin.key');
      writeFileSync(key, execFileSync('cat', [join(cluster.nodes[0].dataDir, 'keys', 'admin.key')]));
      const url = `http://127.0.0.1:${cluster.nodes[0].apiPort}`;
      for (const [label, n] of [
        ['local (entry runs it)', cluster.nodes[0]],
        ['relayed to a direct peer', cluster.nodes[1]],
      ] as const) {
        const id = (await n.json<{ peerId: string }>(['status'])).peerId;
        const r = runClient(undefined, url, key, id);
        console.log(`${label.padEnd(34)} p50 ${r.p50} ms  p99 ${r.p99} ms  mean ${r.mean} ms`);
      }
    } finally {
      await cluster.stop();
    }
    return;
  }
  const topo = createNatTopology();
  const root = mkdtempSync(join(tmpdir(), 'plexus-bench-cmd-'));
  const nodes: NsNode[] = [];
  try {
    const r1 = await nsNode(topo.pub, root, 'r1', topo.pubIp, 7101, 7111);
    const r2 = await nsNode(topo.pub, root, 'r2', topo.pubIp, 7102, 7112);
    const entry = await nsNode(topo.pub, root, 'entry', topo.pubIp, 7103, 7113);
    const natted = await nsNode(topo.nat, root, 'natted', topo.natIp, 7104, 7114);
    nodes.push(r1, r2, entry, natted);
    await r1.setup(['init']);
    await r1.start();
    const tok = (await r1.run(['token', 'create', '--ttl', '10m', '--uses', '3'])).stdout.trim();
    for (const n of [r2, entry]) {
      await n.setup(['join', tok]);
      await n.start();
    }
    topo.allowEgress([7101, 7102, doorPort(7101)]);
    await natted.setup(['join', tok, '--behind-nat']);
    await natted.start();
    const key = join(root, 'op.key');
    await r1.run(['operator', 'keygen', '--out', key]);
    await r1.run(['operator', 'add', '--pub', `${key}.pub`, '--role', 'viewer']);
    const ids: Record<string, string> = {};
    for (const n of nodes) ids[n.name] = (await n.json<{ peerId: string }>(['status'])).peerId;
    // Ready when the entry knows the grant and reaches the NAT'd node (relayed).
    await waitFor(
      async () => {
        const peers = await entry.json<{ name: string; connection: string; state: string }[]>(['peers']);
        const p = peers.find((x) => x.name === 'natted');
        const ls = await entry.json<{ role: string }[]>(['operator', 'ls']);
        return p?.connection === 'relayed' && ls.length === 2;
      },
      60_000,
      'the entry node to reach natted through a relay',
      500,
    );
    const url = `http://${entry.api}`;
    for (const [label, name] of [
      ['local (entry runs it)', 'entry'],
      ['relayed to a direct peer', 'r2'],
      ['circuit relay to the NAT’d node', 'natted'],
    ]) {
      const r = runClient(topo.pub, url, key, ids[name]);
      console.log(`${label.padEnd(34)} p50 ${r.p50} ms  p99 ${r.p99} ms  mean ${r.mean} ms`);
    }
    const peers = await entry.json<{ name: string; connection: string }[]>(['peers']);
    console.log(
      `(entry → natted path: ${peers.find((p) => p.name === 'natted')?.connection}; target: relayed p50 ≤ 10 ms)`,
    );
  } finally {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    topo.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}

function timed(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) =>
    execFile(cmd, args, (err) => (err ? reject(err) : resolve(performance.now() - t0))),
  );
}

function sshTrue(port: number, key: string): Promise<number> {
  return timed('ssh', [
    '-q',
    '-i',
    key,
    '-p',
    String(port),
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'LogLevel=ERROR',
    `${process.env.USER ?? 'root'}@127.0.0.1`,
    'true',
  ]);
}

async function execVsSsh(): Promise<void> {
  console.log(`\n== plexus exec NODE -- true vs ssh 127.0.0.1 true, ${execRuns} runs each, alternating ==`);
  const dir = mkdtempSync(join(tmpdir(), 'plexus-bench-ssh-'));
  const cluster = await startCluster(2);
  let sshd: Awaited<ReturnType<typeof privateSshd>> | undefined;
  try {
    sshd = await privateSshd(dir);
    const exec = () => timed(PLEXUS, ['--data-dir', cluster.nodes[0].dataDir, 'exec', 'n2', '--', 'true']);
    await exec(); // warm the compile cache, as any second run of the CLI would be
    const plexusMs: number[] = [];
    const sshMs: number[] = [];
    for (let i = 0; i < execRuns; i++) {
      plexusMs.push(await exec());
      sshMs.push(await sshTrue(sshd.port, sshd.key));
    }
    const p = median(plexusMs);
    const s = median(sshMs);
    console.log(
      `plexus exec n2 -- true   median ${(p / 1000).toFixed(3)} s  (min ${(Math.min(...plexusMs) / 1000).toFixed(3)} s)`,
    );
    console.log(
      `ssh 127.0.0.1 true       median ${(s / 1000).toFixed(3)} s  (min ${(Math.min(...sshMs) / 1000).toFixed(3)} s)`,
    );
    console.log(`ratio plexus/ssh         ${(p / s).toFixed(2)}x  (target ≤ 1.0x)`);
  } finally {
    sshd?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await latency();
await execVsSsh();
