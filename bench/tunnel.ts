/**
 * Tunnels (issue 6): throughput and latency of a plexus forward against raw TCP and `ssh -L`.
 *
 *   node bench/tunnel.ts [--mib 512] [--runs 5] [--latency-runs 500] [--latency-rounds 5]
 *                        [--no-relay] [--only loopback|latency|nat|two-nats]
 *
 * 1. Throughput, one run: after one untimed warm-up transfer per path, the same `--mib`
 *    transfer (a source process writes it, a sink process reads it and times connect → FIN)
 *    over raw loopback TCP, through `ssh -L` (Debian's
 *    openssh-server on a loopback port with its own host key and key auth, config in a temp
 *    dir; the system sshd is not touched), and through a forward between two agent processes
 *    (`plexus expose src PORT` on n2, `plexus forward add src.n2` on n1), and through two plain
 *    Node relays in a row (tcp-peer.ts `relay`, no crypto: what piping through two Node
 *    processes costs). The four paths are taken in turn within each run (raw first, the others
 *    in reverse order every other run). Median and spread (min-max) of `--runs`, with the ratio
 *    to `ssh -L`, and CPU seconds per GB of both agents against ssh + sshd over the same runs
 *    (and of the relays).
 * 2. Connect + 1-byte echo, p50/p99 over `--latency-runs` connections, raw against `ssh -L`, two
 *    plain Node relays in a row (tcp-peer.ts `relay`: a TCP connection per hop, no crypto, no
 *    framing; what any data path through two Node processes costs at least, short of the
 *    connect per hop that a pool of reused connections saves) and the forward, in
 *    `--latency-rounds` rounds that take the paths in turn (raw first, the others in reverse
 *    order every other round), so that a shared machine's drift hits them all: the median of
 *    the rounds and their spread, what each path adds over raw in the same round, and the CPU
 *    milliseconds per connection of each side (ssh / sshd, relay1 / relay2, n1 / n2).
 *    `--only latency` runs this part alone (no throughput runs before it).
 * 3. Paths to a node behind NAT, beside a direct one in the same topology: network namespaces
 *    (root), a dialable relay r1 and two entry nodes on a "public" LAN, and a node behind a NAT
 *    that drops every inbound connection (it reaches r1's mesh port, where it holds a
 *    reservation, and the entry's data port). The direct figure forwards from the entry to r1's
 *    service; "NAT'd one side" from the entry to the NAT'd node's service (a reverse data
 *    connection: the NAT'd node dials the entry's data port back); "relayed, mesh stream" from
 *    the second entry, whose data path is off, so its tunnel rides the circuit relay's stream.
 *    The entry and r1 share a namespace, so "direct" never crosses the gateway; a forward from
 *    the NAT'd node to the entry's service rides the same kind of data connection as the NAT'd
 *    path (the NAT'd node dials the entry's data port, through the same veths, router and
 *    masquerade), opened from the other end, and is printed beside it. These three are measured
 *    in turn within each run.
 *    Skipped with the reason without root.
 * 4. Two nodes behind two different NATs (hole punching made to fail), a relay between them:
 *    a forward from one to the other rides a connection the relay splices, beside a forward to
 *    the relay's own service in the same topology; CPU seconds per GB of all three agents.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startCluster, waitFor } from '../test/helpers/cluster.ts';
import { createNatTopology, doorPort, type NsNode, natUnavailable, nsNode } from '../test/helpers/netns.ts';
import { createTwoNatTopology } from '../test/helpers/netns-two-nat.ts';
import { privateSshd, tcpListening } from './private-sshd.ts';
import { runPeer, startPeer } from './tcp-peers.ts';

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '512' },
    runs: { type: 'string', default: '5' },
    'latency-runs': { type: 'string', default: '500' },
    'latency-rounds': { type: 'string', default: '5' },
    'no-relay': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const BYTES = Number(values.mib) * 1024 * 1024;
const RUNS = Number(values.runs);
const LAT_RUNS = Number(values['latency-runs']);
const LAT_ROUNDS = Number(values['latency-rounds']);
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const fmt = (n: number) => n.toFixed(0).padStart(6);

/**
 * One untimed transfer, before a path is measured: an agent carrying a tunnel has JIT-compiled
 * hot paths and a young generation sized for traffic (src/runtime/heap.ts), unlike the first
 * second of a cold process. Every path gets one, ssh included.
 */
async function warmUp(port: number, ns?: string, host = '127.0.0.1'): Promise<void> {
  await runPeer(['sink', host, String(port), String(BYTES)], ns);
}

/** MB/s of `--runs` transfers: median and spread. */
interface Rate {
  median: number;
  min: number;
  max: number;
}

const rateOf = (xs: number[]): Rate => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

async function throughput(port: number, ns?: string): Promise<Rate> {
  const [one] = await throughputs([{ port, ns, pids: [] }]);
  return one.rate;
}

/**
 * `--runs` transfers over each path, the paths taken in turn within each run, so that a shared
 * machine's drift hits all of them alike (their ratios are what the bench reports).
 */
async function throughputs(
  paths: { port: number; ns?: string; pids: number[] }[],
): Promise<{ rate: Rate; cpuPerGb: number[] }[]> {
  const xs = paths.map(() => [] as number[]);
  const cpu = paths.map((p) => p.pids.map(() => 0));
  const order = [...paths.entries()];
  for (let i = 0; i < RUNS; i++)
    // The first path first, the others in reverse order every other run (as the latency
    // rounds do), so that none always follows the same one.
    for (const [k, p] of i % 2 === 0 ? order : [order[0], ...order.slice(1).reverse()]) {
      const c0 = p.pids.map((pid) => treeCpu([pid]));
      const r = await runPeer<{ mbps: number }>(['sink', '127.0.0.1', String(p.port), String(BYTES)], p.ns);
      p.pids.forEach((pid, j) => {
        cpu[k][j] += treeCpu([pid]) - c0[j];
      });
      xs[k].push(r.mbps);
    }
  const gb = (RUNS * BYTES) / 1e9;
  return xs.map((x, k) => ({ rate: rateOf(x), cpuPerGb: cpu[k].map((c) => c / gb) }));
}

/** `median MB/s (min-max)`. */
const rate = (r: Rate) => `${fmt(r.median)} MB/s (${r.min.toFixed(0)}-${r.max.toFixed(0)})`;

function latency(port: number, ns?: string) {
  return runPeer<{ p50: number; p99: number; mean: number }>(
    ['latency', '127.0.0.1', String(port), String(LAT_RUNS)],
    ns,
  );
}

/** Connections one latency run makes: tcp-peer.ts warms up with up to 20 before its timed ones. */
const LAT_CONNECTIONS = LAT_RUNS + Math.min(20, LAT_RUNS);

/** CPU seconds (user + system) used so far by `roots` and all their descendants. */
function treeCpu(roots: number[]): number {
  const procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const d of procs) {
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ');
      parent.set(Number(d), Number(f[1]));
      cpu.set(Number(d), (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // exited meanwhile
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, i = 0; p > 1 && i < 64; p = parent.get(p) ?? 0, i++) if (roots.includes(p)) return true;
    return false;
  };
  let total = 0;
  for (const [pid, c] of cpu) if (inTree(pid)) total += c;
  return total;
}

// ---- ssh -L ---------------------------------------------------------------------------------

async function sshForward(
  sshPort: number,
  key: string,
  target: number,
): Promise<{ port: number; pid: number; stop(): void }> {
  const port = await freePort();
  const proc = spawn(
    'ssh',
    [
      '-N',
      '-L',
      `127.0.0.1:${port}:127.0.0.1:${target}`,
      '-p',
      String(sshPort),
      '-i',
      key,
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'LogLevel=ERROR',
      '-o',
      'BatchMode=yes',
      'root@127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  await waitFor(async () => tcpListening(port), 10_000, 'ssh -L');
  return { port, pid: proc.pid ?? 0, stop: () => proc.kill() };
}

// ---- main -----------------------------------------------------------------------------------

async function loopback(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-bench-tunnel-'));
  const stops: (() => void | Promise<void>)[] = [];
  try {
    const src = await startPeer(['source', '0', String(BYTES)]);
    stops.push(src.stop);
    const echo = await startPeer(['echo', '0']);
    stops.push(echo.stop);
    const [srcPort, echoPort] = [src.port, echo.port];
    // What piping through two Node processes costs: two plain relays in a row, to the echo
    // process (latency) and, in the throughput section, to the source.
    const relays = async (target: number) => {
      const second = await startPeer(['relay', '0', String(target)]);
      stops.push(second.stop);
      const first = await startPeer(['relay', '0', String(second.port)]);
      stops.push(first.stop);
      return [first, second] as const;
    };
    const [relay1, relay2] = await relays(echoPort);

    const sshd = await privateSshd(dir);
    stops.push(() => sshd.stop());
    const ssh = await sshForward(sshd.port, sshd.key, srcPort);
    stops.push(() => ssh.stop());
    const sshEcho = await sshForward(sshd.port, sshd.key, echoPort);
    stops.push(() => sshEcho.stop());

    const cluster = await startCluster(2);
    stops.push(() => cluster.stop());
    const [n1, n2] = cluster.nodes;
    for (const [name, port] of [
      ['src', srcPort],
      ['echo', echoPort],
    ] as const) {
      const r = await n2.run(['expose', name, String(port)]);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    const fwd = async (target: string) => {
      const f = await n1.json<{ listen: string }>(['forward', 'add', target]);
      return Number(f.listen.split(':').pop());
    };
    const fwdSrc = await fwd('src.n2');
    const fwdEcho = await fwd('echo.n2');

    if (values.only !== 'latency') await throughputSection();
    async function throughputSection() {
      console.log(`== throughput: ${values.mib} MiB, median of ${RUNS} (min-max) ==`);
      // CPU per GB of the tunnel's own processes: unlike MB/s, it hardly depends on what else
      // runs on the host.
      await warmUp(srcPort);
      await warmUp(ssh.port);
      const srcRelays = await relays(srcPort);
      await warmUp(srcRelays[0].port);
      await warmUp(fwdSrc);
      // All four in turn within each run: the ratio to ssh is the figure that matters, and a
      // shared machine's load drifts over the minutes that blocks of runs would take. Each side
      // apart as well: ssh (the client, receiving end) and sshd (the sending end); n1 (the
      // forward's agent, receiving end) and n2 (the sending end, beside the source).
      const [direct, sshed, relayed, forwarded] = await throughputs([
        { port: srcPort, pids: [] },
        { port: ssh.port, pids: [ssh.pid, sshd.pid] },
        { port: srcRelays[0].port, pids: srcRelays.map((r) => r.pid) },
        { port: fwdSrc, pids: [n1.proc?.pid ?? 0, n2.proc?.pid ?? 0] },
      ]);
      const [raw, viaSsh, viaRelays, viaPlexus] = [direct, sshed, relayed, forwarded].map((p) => p.rate);
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      const [sshSides, plexusSides] = [sshed.cpuPerGb, forwarded.cpuPerGb];
      const [sshCpu, relayCpu, plexusCpu] = [sshSides, relayed.cpuPerGb, plexusSides].map(sum);
      const row = (label: string, r: Rate, extra = '') =>
        console.log(
          `${label.padEnd(30)} ${rate(r)}   ${(r.median / viaSsh.median).toFixed(2)}x ssh -L${extra}`,
        );
      row('raw loopback TCP', raw);
      row('ssh -L', viaSsh);
      row('2 Node relays (no crypto)', viaRelays, `   CPU ${relayCpu.toFixed(2)} s/GB (both relays)`);
      row('plexus forward (2 agents)', viaPlexus);
      console.log(
        `CPU per GB: ssh -L (ssh + sshd) ${sshCpu.toFixed(2)} s, plexus (both agents) ${plexusCpu.toFixed(2)} s: ${(plexusCpu / sshCpu).toFixed(2)}x ssh`,
      );
      console.log(
        `  each side, receiving / sending: ssh ${sshSides[0].toFixed(2)} / sshd ${sshSides[1].toFixed(2)} s; ` +
          `n1 ${plexusSides[0].toFixed(2)} / n2 ${plexusSides[1].toFixed(2)} s`,
      );
    }

    await latencySection([
      { label: 'raw loopback TCP', port: echoPort, sides: [] },
      {
        label: 'ssh -L',
        port: sshEcho.port,
        sides: [
          ['ssh', sshEcho.pid],
          ['sshd', sshd.pid],
        ],
      },
      {
        label: '2 Node relays',
        port: relay1.port,
        sides: [
          ['relay1', relay1.pid],
          ['relay2', relay2.pid],
        ],
      },
      {
        label: 'plexus forward',
        port: fwdEcho,
        sides: [
          ['n1', n1.proc?.pid ?? 0],
          ['n2', n2.proc?.pid ?? 0],
        ],
      },
    ]);
  } finally {
    for (const s of stops.reverse()) await s();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A path of the latency section: the port a client connects to, and the processes that carry it. */
interface LatencyPath {
  label: string;
  port: number;
  /** Name and pid of each side (its descendants count too); none for raw TCP. */
  sides: [string, number][];
}

/**
 * Connect + 1-byte echo over each path, `--latency-rounds` rounds of `--latency-runs` each, the
 * paths in turn (the first, raw, leads every round; the others swap places from one round to the
 * next). Prints per path the median (min-max) of the rounds' p50 and p99, what the path adds over
 * raw at p50 in the same round, and CPU ms per connection of each side over all rounds.
 */
async function latencySection(paths: LatencyPath[]): Promise<void> {
  console.log(
    `\n== connect + 1-byte echo: ${LAT_ROUNDS} rounds of ${LAT_RUNS} per path, in turn; median of the rounds (min-max) ==`,
  );
  const rounds = paths.map(() => [] as { p50: number; p99: number }[]);
  const cpu = paths.map((p) => p.sides.map(() => 0));
  for (let r = 0; r < LAT_ROUNDS; r++) {
    const rest = paths.slice(1).map((_, i) => i + 1);
    const order = [0, ...(r % 2 === 0 ? rest : rest.reverse())];
    for (const i of order) {
      const pids = paths[i].sides.map(([, pid]) => pid);
      const c0 = pids.map((pid) => treeCpu([pid]));
      rounds[i].push(await latency(paths[i].port));
      pids.forEach((pid, k) => {
        cpu[i][k] += treeCpu([pid]) - c0[k];
      });
    }
  }
  const spread = (xs: number[], sign = '') =>
    `${sign}${median(xs).toFixed(3)} ms (${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)})`;
  const raw = rounds[0];
  for (const [i, p] of paths.entries()) {
    const xs = rounds[i];
    const added =
      i === 0
        ? ''
        : `  ${spread(
            xs.map((x, r) => x.p50 - raw[r].p50),
            '+',
          )} over raw`;
    const perConn = (s: number) => ((s * 1000) / (LAT_CONNECTIONS * LAT_ROUNDS)).toFixed(2);
    const sides = p.sides.map(([name], k) => `${name} ${perConn(cpu[i][k])}`).join(' + ');
    const cpuText = p.sides.length
      ? `  CPU ${perConn(cpu[i].reduce((a, b) => a + b, 0))} ms/conn (${sides})`
      : '';
    console.log(
      `${p.label.padEnd(18)} p50 ${spread(xs.map((x) => x.p50))}  p99 ${spread(xs.map((x) => x.p99))}${added}${cpuText}`,
    );
  }
}

async function relayed(): Promise<void> {
  console.log(
    `\n== paths to a node behind NAT (network namespaces), ${values.mib} MiB, median of ${RUNS} (min-max) ==`,
  );
  const skip = values['no-relay'] ? '--no-relay' : natUnavailable();
  if (skip) {
    console.log(`skipped: ${skip}`);
    return;
  }
  const topo = createNatTopology();
  const root = mkdtempSync(join(tmpdir(), 'plexus-bench-tunnel-ns-'));
  const nodes: NsNode[] = [];
  const stops: (() => void)[] = [];
  try {
    const r1 = await nsNode(topo.pub, root, 'r1', topo.pubIp, 7201, 7211);
    const entry = await nsNode(topo.pub, root, 'entry', topo.pubIp, 7203, 7213);
    const entry2 = await nsNode(topo.pub, root, 'entry2', topo.pubIp, 7205, 7215);
    const natted = await nsNode(topo.nat, root, 'natted', topo.natIp, 7204, 7214);
    nodes.push(r1, entry, entry2, natted);
    await r1.setup(['init']);
    await r1.start();
    const tok = (await r1.run(['token', 'create', '--ttl', '10m', '--uses', '3'])).stdout.trim();
    const entryData = 7293;
    await entry.setup(['join', tok]);
    await entry.start({ PLEXUS_TUNNELS__DATA_LISTEN: `${topo.pubIp}:${entryData}` });
    await entry2.setup(['join', tok]);
    await entry2.start({ PLEXUS_TUNNELS__DATA_LISTEN: 'off' });
    topo.allowEgress([7201, doorPort(7201), entryData]);
    await natted.setup(['join', tok]);
    await natted.start({ PLEXUS_MESH__RESERVATIONS: '1' });
    const srcNat = await startPeer(['source', '0', String(BYTES)], topo.nat);
    stops.push(srcNat.stop);
    const srcPub = await startPeer(['source', '0', String(BYTES)], topo.pub);
    stops.push(srcPub.stop);
    await natted.run(['expose', 'src', String(srcNat.port)]);
    await r1.run(['expose', 'src', String(srcPub.port)]);
    await entry.run(['expose', 'src', String(srcPub.port)]);
    for (const n of [entry, entry2])
      await waitFor(
        async () => {
          const peers = await n.json<{ name: string; connection: string }[]>(['peers']);
          return peers.find((p) => p.name === 'natted')?.connection === 'relayed';
        },
        60_000,
        `${n.name} to reach natted through the relay`,
        500,
      );
    const fwd = async (from: NsNode, target: string) => {
      const f = await from.json<{ listen: string }>(['forward', 'add', target]);
      return Number(f.listen.split(':').pop());
    };
    const toR1 = await fwd(entry, 'src.r1');
    const toNatted = await fwd(entry, 'src.natted');
    const nattedToEntry = await fwd(natted, 'src.entry');
    const viaStream = await fwd(entry2, 'src.natted');
    await warmUp(toR1, topo.pub);
    // The warm-up finds the data path out (the direct dial fails, the NAT'd node dials back).
    await warmUp(toNatted, topo.pub);
    await warmUp(nattedToEntry, topo.nat);
    const pid = (n: NsNode) => n.proc?.pid ?? 0;
    const measured = await throughputs([
      { port: toR1, ns: topo.pub, pids: [pid(entry), pid(r1)] },
      { port: toNatted, ns: topo.pub, pids: [pid(entry), pid(natted)] },
      { port: nattedToEntry, ns: topo.nat, pids: [pid(natted), pid(entry)] },
    ]);
    const [direct, natOneSide, sameRoute] = measured.map((m) => m.rate);
    // Both agents' CPU per GB, and each one's: receiving (the forward's) / sending side.
    const cpu = measured.map(
      (m) =>
        `${(m.cpuPerGb[0] + m.cpuPerGb[1]).toFixed(2)} s/GB (${m.cpuPerGb.map((c) => c.toFixed(2)).join(' / ')})`,
    );
    await warmUp(viaStream, topo.pub);
    const relayedStream = await throughput(viaStream, topo.pub);
    const status = await entry.json<{ tunnels: { tunnels: { dataPaths: Record<string, string> } } }>([
      'status',
    ]);
    const vs = (r: Rate) => `${(r.median / direct.median).toFixed(2)}x direct`;
    console.log(`direct (entry → r1, one namespace)           ${rate(direct)}   CPU ${cpu[0]}, entry / r1`);
    console.log(
      `NAT'd one side (entry → natted, data path ${Object.values(status.tunnels.tunnels.dataPaths).join('/')}) ${rate(natOneSide)}   ${vs(natOneSide)}   CPU ${cpu[1]}, entry / natted`,
    );
    // The same data connection (the NAT'd node dials the entry's data port, through the same
    // gateway, veths and masquerade), opened the other way: the NAT'd node forwards to the
    // entry's service. What the route costs on this machine, apart from the reverse request.
    console.log(
      `  over the NAT's route, dialled out (natted → entry) ${rate(sameRoute)}   ${vs(sameRoute)}; NAT'd one side ${(natOneSide.median / sameRoute.median).toFixed(2)}x this   CPU ${cpu[2]}, natted / entry`,
    );
    console.log(`relayed, mesh stream (entry2 → r1 → natted)  ${rate(relayedStream)}   ${vs(relayedStream)}`);
  } finally {
    for (const s of stops) s();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    topo.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Two nodes behind two different symmetric NATs whose gateways reset unsolicited SYNs (so hole
 * punching fails every time), a relay on the public LAN, all joined with a plain `join`: a's forward to b's service
 * rides a connection spliced by the relay (docs/tunnels.md), beside a's forward to the relay's
 * own service (a direct data connection, a dials out) in the same topology and run.
 */
async function twoNats(): Promise<void> {
  console.log(
    `\n== two NATs, relay splice (network namespaces), ${values.mib} MiB, median of ${RUNS} (min-max) ==`,
  );
  const skip = values['no-relay'] ? '--no-relay' : natUnavailable();
  if (skip) {
    console.log(`skipped: ${skip}`);
    return;
  }
  const topo = createTwoNatTopology({ dropUnsolicited: false, symmetric: true });
  const root = mkdtempSync(join(tmpdir(), 'plexus-bench-tunnel-2nat-'));
  const nodes: NsNode[] = [];
  const stops: (() => void)[] = [];
  try {
    const relay = await nsNode(topo.pub, root, 'relay', topo.pubIp, 7301, 7311);
    const a = await nsNode(topo.natA, root, 'a', topo.natAIp, 7302, 7312);
    const b = await nsNode(topo.natB, root, 'b', topo.natBIp, 7303, 7313);
    nodes.push(relay, a, b);
    await relay.setup(['init']);
    await relay.start();
    const tok = (await relay.run(['token', 'create', '--ttl', '10m', '--uses', '2'])).stdout.trim();
    await a.setup(['join', tok]);
    await b.setup(['join', tok]);
    await Promise.all([a.start(), b.start()]);
    const srcB = await startPeer(['source', '0', String(BYTES)], topo.natB);
    stops.push(srcB.stop);
    const srcRelay = await startPeer(['source', '0', String(BYTES)], topo.pub);
    stops.push(srcRelay.stop);
    await b.run(['expose', 'src', String(srcB.port)]);
    await relay.run(['expose', 'src', String(srcRelay.port)]);
    const fwd = async (target: string) =>
      Number((await a.json<{ listen: string }>(['forward', 'add', target])).listen.split(':').pop());
    const toRelay = await fwd('src.relay');
    const toB = (await waitFor(() => fwd('src.b').catch(() => false), 60_000, 'a to reach b', 500)) as number;
    type Counters = { dataPaths: Record<string, string>; openedSpliced: number };
    const tunnelsOf = async () =>
      (await a.json<{ tunnels: { tunnels: Counters } }>(['status'])).tunnels.tunnels;
    // The first transfers ride the relay's mesh stream while a finds out that neither side can
    // dial the other; then both meet at the relay.
    await waitFor(
      async () => {
        await warmUp(toB, topo.natA);
        return Object.values((await tunnelsOf()).dataPaths).includes('spliced');
      },
      120_000,
      'the path a → b to be spliced at the relay',
      0,
    );
    await warmUp(toRelay, topo.natA);
    const direct = await throughput(toRelay, topo.natA);
    const before = (await tunnelsOf()).openedSpliced;
    const agents = nodes.map((n) => n.proc?.pid ?? 0).filter((p) => p > 0);
    const relayPid = [relay.proc?.pid ?? 0];
    const [c0, r0] = [treeCpu(agents), treeCpu(relayPid)];
    const spliced = await throughput(toB, topo.natA);
    const gb = (BYTES * RUNS) / 1e9;
    const cpu = (treeCpu(agents) - c0) / gb;
    const relayCpu = (treeCpu(relayPid) - r0) / gb;
    const rode = (await tunnelsOf()).openedSpliced - before;
    console.log(`direct (a → relay's service)                 ${rate(direct)}`);
    console.log(
      `spliced (a → relay → b, TLS end to end)      ${rate(spliced)}   ${(spliced.median / direct.median).toFixed(2)}x direct (target 0.5x); ${rode}/${RUNS} transfers spliced; CPU ${cpu.toFixed(2)} s/GB (a + relay + b; the relay ${relayCpu.toFixed(2)})`,
    );
  } finally {
    for (const s of stops) s();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    topo.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}

// `--only loopback|latency|nat|two-nats` runs one section (the two-NAT one alone takes about a
// minute); `latency` is the loopback section's connect + echo part alone.
if (!values.only || values.only === 'loopback' || values.only === 'latency') await loopback();
if (!values.only || values.only === 'nat') await relayed();
if (!values.only || values.only === 'two-nats') await twoNats();
process.exit(0);
