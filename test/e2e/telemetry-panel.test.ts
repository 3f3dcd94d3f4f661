/**
 * Panel push with a real agent against a local HTTP server: heartbeats arrive in the agreed
 * shape with the bearer token, at most 10 are kept while the panel answers 500, and they are
 * flushed oldest first once it answers again.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Cluster, startCluster, waitFor } from '../helpers/cluster.ts';

interface Beat {
  server_id: string;
  timestamp: string;
  metrics: Record<string, number | null>;
  containers: Record<string, unknown>[];
  agent_version: string;
}

/** /metrics is served only with api.metricsToken set (issue 12). */
const METRICS_TOKEN = 'e2e-metrics-token-0123456789';

describe('telemetry: panel push', () => {
  const beats: { at: number; auth?: string; beat: Beat }[] = [];
  const panel = { status: 200, failed: 0 };
  let server: Server;
  let cluster: Cluster;

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        if (req.url === '/bundle.tgz') {
          res.end(readFileSync(join(cluster.root, 'bundle.tgz')));
          return;
        }
        if (panel.status !== 200) panel.failed++;
        else beats.push({ at: Date.now(), auth: req.headers.authorization, beat: JSON.parse(body) });
        res.writeHead(panel.status, { 'content-type': 'application/json' });
        res.end(
          panel.status === 200 ? JSON.stringify({ ok: true, next_heartbeat_seconds: 1 }) : '{"error":"down"}',
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    cluster = await startCluster(1, {
      env: {
        PLEXUS_PANEL__URL: `http://127.0.0.1:${port}/api/heartbeat`,
        PLEXUS_PANEL__TOKEN: 'panel-secret-token',
        // 60 s by default; the panel's next_heartbeat_seconds (1) keeps it at one a second.
        PLEXUS_PANEL__INTERVAL_S: '1',
        PLEXUS_API__METRICS_TOKEN: METRICS_TOKEN,
      },
    });
  });
  after(async () => {
    await cluster?.stop();
    server?.closeAllConnections();
    server?.close();
  });

  it('posts heartbeats in the panel shape with the bearer token, apps as containers', async () => {
    const [n1] = cluster.nodes;
    const dir = join(cluster.root, 'app');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'README'), 'sleeps\n');
    execFileSync('tar', ['czf', join(cluster.root, 'bundle.tgz'), '-C', dir, '.']);
    const port = (server.address() as AddressInfo).port;
    const d = await n1.run(
      [
        'deploy',
        'web',
        '--url',
        `http://127.0.0.1:${port}/bundle.tgz`,
        // A plain-http bundle is pinned by its sha256 (issue 13).
        '--sha256',
        createHash('sha256')
          .update(readFileSync(join(cluster.root, 'bundle.tgz')))
          .digest('hex'),
        '--cmd',
        'sleep 600',
        '--restart',
        'never',
      ],
      { timeoutMs: 120_000 },
    );
    assert.equal(d.code, 0, d.stderr);
    const found = await waitFor(
      () => beats.find((x) => x.beat.containers.some((c) => c.name === 'web' && c.status === 'running')),
      15_000,
      'a beat listing the app running',
    );
    assert.ok(found);
    const b = found.beat;
    assert.equal(beats[0].auth, 'Bearer panel-secret-token');
    assert.deepEqual(Object.keys(b).sort(), [
      'agent_version',
      'containers',
      'metrics',
      'server_id',
      'timestamp',
    ]);
    assert.equal(b.server_id, 'n1');
    assert.ok(!Number.isNaN(Date.parse(b.timestamp)));
    assert.deepEqual(Object.keys(b.metrics).sort(), [
      'cpu_percent',
      'disk_total_gb',
      'disk_used_gb',
      'load_average',
      'network_in_bytes',
      'network_out_bytes',
      'ram_total_mb',
      'ram_used_mb',
    ]);
    assert.ok((b.metrics.ram_total_mb ?? 0) > 0 && (b.metrics.disk_total_gb ?? 0) > 0);
    const web = b.containers.find((c) => c.name === 'web');
    assert.deepEqual(Object.keys(web ?? {}).sort(), [
      'cpu_percent',
      'health',
      'id',
      'image',
      'memory_mb',
      'name',
      'status',
      'uptime_seconds',
    ]);
    assert.equal(web?.status, 'running');
    const log = readFileSync(join(n1.dataDir, 'logs', 'agent.log'), 'utf8');
    assert.ok(!log.includes('panel-secret-token'), 'the token is never logged');
  });

  it('keeps at most 10 beats while the panel answers 500, and flushes them when it answers', async () => {
    panel.status = 500;
    const downAt = Date.now();
    await waitFor(() => panel.failed >= 14, 30_000, '14 failed attempts', 100);
    const upAt = Date.now();
    beats.length = 0;
    panel.status = 200;
    await waitFor(
      () => beats.filter((x) => Date.parse(x.beat.timestamp) > upAt).length >= 1,
      15_000,
      'a fresh beat',
    );
    const queued = beats.filter((x) => {
      const ts = Date.parse(x.beat.timestamp);
      return ts >= downAt && ts < upAt;
    });
    assert.equal(queued.length, 10, 'exactly the 10 newest beats of the outage were kept');
    const times = queued.map((x) => Date.parse(x.beat.timestamp));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      'flushed oldest first',
    );
    assert.ok((queued.at(-1)?.at ?? 0) - queued[0].at < 2000, 'flushed together, not one per interval');
    const metrics = await (
      await fetch(`http://127.0.0.1:${cluster.nodes[0].apiPort}/metrics`, {
        headers: { authorization: `Bearer ${METRICS_TOKEN}` },
      })
    ).text();
    assert.match(metrics, /^plexus_panel_queue_length 0$/m);
    assert.match(metrics, /^plexus_panel_heartbeats_total\{result="dropped"\} [1-9]/m);
  });
});
