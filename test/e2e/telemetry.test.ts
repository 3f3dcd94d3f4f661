/**
 * Telemetry with real agents: every node sees every node's figures and apps, an app started on
 * one node shows `running` elsewhere within 2 s, a stopped node turns suspect then down, forged
 * records are dropped, /metrics passes promtool, /health and /v1/telemetry answer.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { plexusAuthorization } from '../../src/api/authorization.ts';
import { type Cluster, ROOT, startCluster, type TestNode, waitFor } from '../helpers/cluster.ts';
import { sign } from '../helpers/commands.ts';

const execFileP = promisify(execFile);

interface App {
  name: string;
  status: string;
}
interface Peer {
  name: string;
  peerId: string;
  state: string;
  telemetry?: {
    node: string;
    peerId: string;
    seq: number;
    cpu: { pct: number | null; cores: number };
    mem: { usedMb: number | null; totalMb: number | null };
    disk: { usedGb: number | null; totalGb: number | null };
    apps: App[];
  };
}

const INTERVAL_S = 0.5;
const FORGER = join(ROOT, 'test', 'fixtures', 'telemetry', 'forger.ts');
const peer = async (node: TestNode, name: string) =>
  (await node.json<Peer[]>(['peers'])).find((p) => p.name === name);
const METRICS_TOKEN = 'e2e-metrics-token-0123456789';
/** A GET to the node's API; /metrics with its bearer token. */
const api = (node: TestNode, path: string, headers: Record<string, string> = {}) =>
  fetch(`http://127.0.0.1:${node.apiPort}${path}`, {
    headers: path === '/metrics' ? { authorization: `Bearer ${METRICS_TOKEN}`, ...headers } : headers,
  });
/** GET /v1/telemetry signed with the network's admin key (on n1) for exactly `args`. */
async function history(node: TestNode, query: string, args: Record<string, unknown>) {
  const { peerId } = await (await api(node, '/v1/node')).json();
  const { envelope } = sign(join(node.dataDir, 'keys', 'admin.key'), {
    target: peerId,
    action: 'telemetry.history',
    args,
  });
  return api(node, `/v1/telemetry?${query}`, { authorization: plexusAuthorization(envelope) });
}

/** promtool from Debian's prometheus package: installed with apt-get when missing and root. */
function promtool(): string | undefined {
  const which = () => spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();
  if (which()) return which();
  if (process.getuid?.() !== 0) return undefined;
  spawnSync(
    'sh',
    [
      '-c',
      'flock /tmp/plexus-apt.lock apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1',
    ],
    { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300_000 },
  );
  return which() || undefined;
}

describe('telemetry: gossip, CLI, HTTP', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(3, {
      env: { PLEXUS_TELEMETRY__INTERVAL_S: String(INTERVAL_S), PLEXUS_API__METRICS_TOKEN: METRICS_TOKEN },
    });
  });
  after(async () => cluster?.stop());

  it("peers --json carries every peer's full record; peers and top print the figures", async () => {
    const [n1] = cluster.nodes;
    const peers = await waitFor(
      async () => {
        const ps = await n1.json<Peer[]>(['peers']);
        // A node's first record has no CPU % yet (it needs two samples): wait for one that has.
        return ps.every((p) => p.telemetry?.mem.totalMb && p.telemetry.cpu.pct != null) ? ps : undefined;
      },
      10_000,
      'records from every peer',
    );
    for (const p of peers ?? []) {
      const t = p.telemetry;
      assert.ok(t);
      assert.equal(t.node, p.name);
      assert.equal(t.peerId, p.peerId);
      assert.ok(t.cpu.cores >= 1);
      assert.ok((t.mem.totalMb ?? 0) > 0 && (t.disk.totalGb ?? 0) > 0);
      assert.ok(Array.isArray(t.apps));
    }
    const table = await n1.run(['peers']);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /CPU\s+MEM\s+DISK\s+APPS/);
    assert.match(table.stdout, /n2\s+online\s+direct\s+\S+\s+\d+%\s+[\d.]+\/[\d.]+G\s+\d+\/\d+G\s+\d+\/\d+/);

    const top = await n1.json<{ name: string; self: boolean; telemetry: unknown }[]>(['top']);
    assert.deepEqual(top.map((x) => x.name).sort(), ['n1', 'n2', 'n3']);
    assert.equal(top.find((x) => x.self)?.name, 'n1');
    const screen = await n1.run(['top', '-n', '2', '-d', '0.2', '--watch']);
    assert.equal(screen.code, 0);
    assert.equal(screen.stdout.match(/plexus top — 3 nodes: 3 online/g)?.length, 2, 'two refreshes');
  });

  it("an app started on one node shows 'running' in another node's peers within 2 s", async (t) => {
    // A plain-http bundle is pinned by its sha256 (issue 13).
    const sha256Of = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    const [n1, n2] = cluster.nodes;
    // A bundle served from a local HTTP server (deploy --url).
    const dir = join(cluster.root, 'app-src');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'README'), 'a test app that sleeps\n');
    const bundle = join(cluster.root, 'sleeper.tgz');
    execFileSync('tar', ['czf', bundle, '-C', dir, '.']);
    const server = createServer((_req, res) => res.end(readFileSync(bundle)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sleeper.tgz`;
    const d = await n2
      .run(
        [
          'deploy',
          'sleeper',
          '--url',
          url,
          '--sha256',
          sha256Of(bundle),
          '--cmd',
          'sleep 600',
          '--restart',
          'never',
        ],
        {
          timeoutMs: 120_000,
        },
      )
      .finally(() => server.close());
    assert.equal(d.code, 0, d.stderr);
    const stop = await n2.run(['stop', 'sleeper']);
    assert.equal(stop.code, 0, stop.stderr);
    await waitFor(
      async () =>
        (await peer(n1, 'n2'))?.telemetry?.apps.find((a) => a.name === 'sleeper')?.status === 'stopped',
      10_000,
      'n1 to see sleeper stopped',
    );
    const start = await n2.run(['start', 'sleeper']);
    assert.equal(start.code, 0, start.stderr);
    const t0 = Date.now();
    await waitFor(
      async () =>
        (await peer(n1, 'n2'))?.telemetry?.apps.find((a) => a.name === 'sleeper')?.status === 'running',
      5_000,
      'n1 to see sleeper running',
      20,
    );
    const ms = Date.now() - t0;
    t.diagnostic(`n1 saw sleeper running ${ms} ms after 'plexus start' returned on n2`);
    assert.ok(ms <= 2000, `seen after ${ms} ms`);
    const rm = await n2.run(['rm', 'sleeper']);
    assert.equal(rm.code, 0, rm.stderr);
  });

  it('GET /health, and a signed GET /v1/telemetry returns history for charts; unsigned is 401', async () => {
    const [n1] = cluster.nodes;
    const health = await (await api(n1, '/health')).json();
    assert.equal(health.status, 'ok');
    assert.equal(typeof health.uptimeS, 'number');
    assert.equal(typeof health.version, 'string');

    const unsigned = await api(n1, '/v1/telemetry?node=n2');
    assert.equal(unsigned.status, 401);
    assert.equal((await unsigned.json()).error.code, 'UNAUTHENTICATED');

    const since = Date.now() - 60_000;
    const res = await history(n1, `node=n2&since=${since}`, { node: 'n2', since });
    assert.equal(res.status, 200);
    const h = await res.json();
    assert.equal(h.node, 'n2');
    assert.equal(h.resolution, 'fine');
    assert.equal(h.stepS, INTERVAL_S);
    assert.ok(h.points.length >= 3);
    assert.ok(h.points.every((p: { ts: number }) => p.ts >= since));
    assert.ok(h.points.some((p: { memTotalMb: number | null }) => p.memTotalMb && p.memTotalMb > 0));
    const self = await (await history(n1, 'node=n1', { node: 'n1' })).json();
    assert.ok(self.points.length >= 1, 'own history too');
    const coarse = await (
      await history(n1, 'node=n2&resolution=coarse', { node: 'n2', resolution: 'coarse' })
    ).json();
    assert.equal(coarse.stepS, 60);

    const unknown = await history(n1, 'node=nope', { node: 'nope' });
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.code, 'NO_HISTORY');
    const missing = await history(n1, '', {});
    assert.equal(missing.status, 400);
  });

  it('/metrics without its token is 401', async () => {
    const res = await fetch(`http://127.0.0.1:${cluster.nodes[0].apiPort}/metrics`);
    assert.equal(res.status, 401);
  });

  it('GET /metrics has node, app and mesh metrics and passes promtool check metrics', async (t) => {
    const [n1] = cluster.nodes;
    const res = await api(n1, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    for (const re of [
      /^plexus_node_cpu_percent\{node="n2"\} /m,
      /^plexus_node_memory_total_bytes\{node="n1"\} \d/m,
      /^plexus_mesh_peers\{state="online"\} 2$/m,
      /^plexus_mesh_connected_peers\{path="direct"\} 2$/m,
      /^plexus_mesh_connected_peers\{path="relayed"\} 0$/m,
      /^plexus_gossip_messages_received_total\{topic="plexus\/telemetry\/1"\} \d+/m,
      /^plexus_telemetry_records_received_total\{result="accepted"\} [1-9]/m,
      /^plexus_telemetry_delivery_delay_seconds_bucket\{le="0.5"\} [1-9]/m,
      /^libp2p_data_transfer_bytes_total\{protocol="global received"\} \d/m,
      /^process_cpu_seconds_total /m,
    ]) {
      assert.match(text, re);
    }
    const tool = promtool();
    if (!tool) return t.skip('promtool is not installed and apt-get needs root (apt-get install prometheus)');
    const file = join(cluster.root, 'metrics.txt');
    writeFileSync(file, text);
    const r = spawnSync('sh', ['-c', `${tool} check metrics < ${file}`], { encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  });

  it('a stopped node turns suspect, then down', async () => {
    const [n1, , n3] = cluster.nodes;
    await n3.stop('SIGKILL');
    const t0 = Date.now();
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const s = (await peer(n1, 'n3'))?.state;
        if (s) seen.add(s);
        return s === 'down';
      },
      20_000,
      'n3 to be down',
      50,
    );
    assert.ok(seen.has('suspect'), `states seen: ${[...seen].join(', ')}`);
    // Down after 6 intervals without a record (3 s here), not before.
    assert.ok(Date.now() - t0 >= 6 * INTERVAL_S * 1000 - 500);
  });

  it('drops a forged record of an admitted node claiming another peer; a stranger cannot even connect', async () => {
    const [n1, , n3] = cluster.nodes; // n3 is stopped (previous test): its key is ours to misuse
    const before = await metricsOf(n1);
    const n2Before = (await peer(n1, 'n2'))?.telemetry;
    assert.ok(n2Before);
    const keys = join(n3.dataDir, 'keys');
    const n1Id = (await n1.json<{ peerId: string }>(['status'])).peerId;
    const target = `/ip4/127.0.0.1/tcp/${n1.meshPort}/p2p/${n1Id}`;
    const { stdout, stderr } = await execFileP(
      process.execPath,
      [FORGER, join(keys, 'node.key'), join(keys, 'swarm.key'), target, 'n2', n2Before.peerId],
      { timeout: 60_000 },
    );
    assert.match(stdout, /stranger reached 0\b/, stderr);
    const afterForge = await waitFor(
      async () => {
        const m = await metricsOf(n1);
        return m.forged > before.forged ? m : undefined;
      },
      10_000,
      'the forged records to be counted as dropped',
    );
    assert.ok(afterForge);
    assert.equal(afterForge.notMember, before.notMember, "the stranger's record never arrived");
    const n2Now = (await peer(n1, 'n2'))?.telemetry;
    assert.ok(n2Now && !n2Now.apps.some((a) => a.name === 'forged'), "n2's record is not replaced");
    const n3Now = (await peer(n1, 'n3'))?.telemetry;
    assert.ok(!n3Now?.apps.some((a) => a.name === 'forged'));
    const log = readFileSync(join(n1.dataDir, 'logs', 'agent.log'), 'utf8');
    assert.equal(
      log.match(
        /dropping a telemetry record.*"reason":"forged"|"reason":"forged".*dropping a telemetry record/g,
      )?.length,
      1,
    );
  });
});

async function metricsOf(node: TestNode) {
  const text = await (await api(node, '/metrics')).text();
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    forged: num(/^plexus_telemetry_records_received_total\{result="dropped_forged"\} (\d+)/m),
    notMember: num(/^plexus_telemetry_records_received_total\{result="dropped_not_member"\} (\d+)/m),
  };
}
