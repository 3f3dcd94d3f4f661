/**
 * The container collector (issue 18) against a fake Engine API on a unix socket: parsing of the
 * list and the stats, the caps that keep a record under the gossip limit, and hostile engines
 * (oversized, malformed, slow answers, entries that are not what the API describes). A node
 * without a socket reports none and logs nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { render } from '../../../src/cli/top.ts';
import type { Logger } from '../../../src/logging/index.ts';
import type { TelemetryCounts, TelemetryRecord } from '../../../src/mesh/index.ts';
import { telemetryContainerSchema } from '../../../src/mesh/telemetry-schema.ts';
import { ContainerCollector, parseListed } from '../../../src/telemetry/containers.ts';
import { createMetricsRegistry } from '../../../src/telemetry/metrics.ts';
import { sampleRecord } from '../../helpers/telemetry.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-engine-'));
const socket = join(dir, 'docker.sock');
let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => r.end('[]');
let server: Server;

/** A logger that counts warnings (the collector logs nothing else). */
function countingLogger() {
  const warnings: string[] = [];
  const logger = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as Logger;
  return { logger, warnings };
}

const hex = (i: number) => i.toString(16).padStart(12, '0') + 'a'.repeat(52);
const entry = (i: number, over: Record<string, unknown> = {}) => ({
  Id: hex(i),
  Names: [`/svc-${i}`],
  Image: 'redis:7',
  State: 'running',
  Status: 'Up 3 minutes (healthy)',
  ...over,
});
const stats = (total: number, system: number) => ({
  cpu_stats: { cpu_usage: { total_usage: total }, system_cpu_usage: system, online_cpus: 2 },
  memory_stats: { usage: 300 * 1024 * 1024, stats: { inactive_file: 100 * 1024 * 1024 } },
});
const json = (res: ServerResponse, body: unknown) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
};

before(async () => {
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(socket, r));
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('containers in telemetry', () => {
  it('a node without an engine socket reports none and logs nothing', async () => {
    const { logger, warnings } = countingLogger();
    const c = new ContainerCollector({ sockets: [join(dir, 'absent.sock'), dir] }, { logger });
    assert.equal(await c.sample(), undefined);
    assert.deepEqual(warnings, []);
  });

  it('reports id, name, image, state, health, CPU and memory', async () => {
    let total = 1e9;
    let system = 100e9;
    handler = (req, res) => {
      if (req.url === '/containers/json?all=1')
        return json(res, [
          entry(1),
          entry(2, {
            Names: ['/db'],
            Image: 'postgres:16',
            State: 'exited',
            Status: 'Exited (0) 2 hours ago',
          }),
          entry(3, { Status: 'Up 1 second (health: starting)' }),
        ]);
      if (req.url?.startsWith(`/containers/${hex(1).slice(0, 12)}/stats`))
        return json(res, stats(total, system));
      if (req.url?.includes('/stats')) return json(res, stats(0, 0));
      res.writeHead(404).end();
    };
    const { logger, warnings } = countingLogger();
    const c = new ContainerCollector({ sockets: [socket] }, { logger });
    const first = (await c.sample())!;
    assert.equal(first.omitted, 0);
    assert.deepEqual(first.containers[0], {
      id: hex(1).slice(0, 12),
      name: 'svc-1',
      image: 'redis:7',
      state: 'running',
      health: 'healthy',
      cpuPct: null, // a rate needs two samples
      memMb: 200,
    });
    assert.deepEqual(
      first.containers.map((x) => [x.name, x.state, x.health]),
      [
        ['svc-1', 'running', 'healthy'],
        ['svc-3', 'running', 'starting'],
        ['db', 'exited', 'none'],
      ],
    );
    assert.equal(first.containers[2].memMb, null, 'a stopped container has no figures');
    total += 0.5e9; // half a core-second over 10 system-seconds on 2 CPUs: 10 % of one core
    system += 10e9;
    const second = (await c.sample())!;
    assert.equal(second.containers[0].cpuPct, 10);
    for (const x of second.containers) telemetryContainerSchema.parse(x);
    assert.deepEqual(warnings, []);
  });

  it('caps the list to fit the record and counts what it left out', async () => {
    handler = (req, res) => {
      if (req.url === '/containers/json?all=1')
        return json(
          res,
          Array.from({ length: 300 }, (_, i) => entry(i, { Image: 'x'.repeat(200), State: 'exited' })),
        );
      res.writeHead(404).end();
    };
    const c = new ContainerCollector({ sockets: [socket] }, countingLogger());
    const s = (await c.sample())!;
    assert.ok(s.containers.length > 0 && s.containers.length <= 24, `${s.containers.length} containers`);
    assert.equal(s.omitted, 300 - s.containers.length);
    assert.ok(JSON.stringify(s.containers).length <= 4096, 'within its 4 KiB of the record');
    assert.equal(s.containers[0].image.length, 96);
  });

  it('skips entries that are not what the API describes, and cleans names', async () => {
    assert.equal(parseListed(null), undefined);
    assert.equal(parseListed({ Id: '../../etc', Names: ['/x'] }), undefined);
    assert.equal(parseListed({ Id: 42 }), undefined);
    const odd = parseListed({
      Id: hex(7),
      Names: [{}, '/y'],
      Image: 5,
      State: 'exploded',
      Status: ['(healthy)'],
    });
    assert.deepEqual(odd, {
      id: hex(7).slice(0, 12),
      name: 'y',
      image: '',
      state: 'unknown',
      health: 'none',
    });
    const esc = parseListed({
      Id: hex(8),
      Names: ['/\x1b[2Jevil\nname'],
      Image: 'i',
      State: 'running',
      Status: '',
    });
    assert.equal(esc?.name, '?[2Jevil?name', 'no terminal escapes reach `plexus top`');
  });

  describe('hostile engines: the record goes on without containers, one warning, never a crash', () => {
    const cases: [string, (req: IncomingMessage, res: ServerResponse) => void][] = [
      ['an oversized list', (_q, res) => res.end(`[${'"x",'.repeat(400_000)}"x"]`)],
      ['a malformed list', (_q, res) => res.end('[{"Id": ')],
      ['a list that is not a list', (_q, res) => json(res, { message: 'page not found' })],
      ['an error status', (_q, res) => res.writeHead(500).end('{}')],
      ['an engine that never answers', () => {}],
      ['an engine that sends headers then stalls', (_q, res) => res.writeHead(200).write('[')],
    ];
    for (const [what, h] of cases) {
      it(what, async () => {
        handler = h;
        const { logger, warnings } = countingLogger();
        const c = new ContainerCollector({ sockets: [socket], timeoutMs: 300 }, { logger });
        const t0 = Date.now();
        assert.deepEqual(await c.sample(), { containers: [], omitted: 0 });
        assert.deepEqual(await c.sample(), { containers: [], omitted: 0 });
        assert.ok(Date.now() - t0 < 2_000, 'bounded by the timeout');
        assert.equal(warnings.length, 1, 'logged once, not every interval');
      });
    }

    it('oversized or slow stats leave that container without figures', async () => {
      handler = (req, res) => {
        if (req.url === '/containers/json?all=1') return json(res, [entry(1), entry(2)]);
        if (req.url?.startsWith(`/containers/${hex(1).slice(0, 12)}`)) return res.end('x'.repeat(300_000));
        // the second one never answers
      };
      const c = new ContainerCollector({ sockets: [socket], timeoutMs: 300 }, countingLogger());
      const s = (await c.sample())!;
      assert.deepEqual(
        s.containers.map((x) => [x.cpuPct, x.memMb]),
        [
          [null, null],
          [null, null],
        ],
      );
    });
  });

  it('shows in /metrics and in plexus top, with the count left out', async () => {
    const containers = [
      {
        id: 'abcdef012345',
        name: 'cache',
        image: 'redis:7',
        state: 'running',
        health: 'healthy',
        cpuPct: 2.5,
        memMb: 10,
      },
    ];
    const record = sampleRecord({ containers, containersOmitted: 3 }) as TelemetryRecord;
    const metrics = createMetricsRegistry();
    const detach = metrics.attach({
      self: () => 'web-1',
      records: () => [record],
      peers: () => [],
      counts: () => ({ published: 0, accepted: 0, ignored: 0, rejected: {} }) as unknown as TelemetryCounts,
      gossipReceived: () => new Map(),
      panel: () => undefined,
    });
    const text = (await metrics.render()).body;
    detach();
    assert.match(
      text,
      /^plexus_container_info\{node="web-1",container="cache",id="abcdef012345",image="redis:7",state="running",health="healthy"\} 1$/m,
    );
    assert.match(text, /^plexus_container_cpu_percent\{node="web-1",container="cache"\} 2.5$/m);
    assert.match(text, /^plexus_container_memory_bytes\{node="web-1",container="cache"\} 10485760$/m);
    assert.match(text, /^plexus_node_containers_omitted\{node="web-1"\} 3$/m);
    const screen = render(
      [{ name: 'web-1', self: true, state: 'online', connection: 'self', rttMs: null, telemetry: record }],
      Date.now(),
    );
    assert.match(screen, /^web-1\s+cache\s+abcdef012345\s+redis:7\s+running\s+healthy\s+3%\s+10M/m);
    assert.match(screen, /more containers not in the records: 3 on web-1/);
  });
});
