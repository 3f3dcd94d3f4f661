/**
 * Prometheus metrics for `GET /metrics`: the fleet's node and app figures (from the latest
 * record of every node, so scraping any one agent shows the whole mesh), mesh health (peers by
 * state, connections direct vs relayed, gossip traffic, telemetry delivery delay) and libp2p's
 * own metrics through @libp2p/prometheus-metrics, all in one registry per agent.
 */
import { prometheusMetrics } from '@libp2p/prometheus-metrics';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PeerState, TelemetryCounts, TelemetryRecord } from '../mesh/index.ts';
import { DELIVERY_DELAY_BUCKETS, EVENT_LOOP_SAMPLE_MS } from './constants.ts';
import type { PanelStats } from './panel.ts';

/** What the metrics read when scraped. */
export interface MetricsSource {
  /** This node's name (labels the mesh metrics). */
  self(): string;
  /** The latest record of every node, this one included. */
  records(): TelemetryRecord[];
  /** Every other member's state and path. */
  peers(): { state: PeerState; connection: 'direct' | 'relayed' | 'none' }[];
  /** The telemetry bus counters. */
  counts(): TelemetryCounts;
  /** Gossip messages delivered to us, per topic. */
  gossipReceived(): ReadonlyMap<string, number>;
  /** Panel push counters, when panel push is on. */
  panel(): PanelStats | undefined;
}

/** A registry plus the libp2p metrics implementation that writes into it. */
export interface MetricsRegistry {
  registry: Registry;
  /** Pass to the mesh (`MeshInit.libp2pMetrics`) so libp2p reports into the same registry. */
  libp2pMetrics: ReturnType<typeof prometheusMetrics>;
  /**
   * Makes `source` what the plexus metrics read at scrape time, and returns the function that
   * detaches it. Until a source is attached (the registry is built before the mesh, the telemetry
   * service after it), those metrics are empty and only libp2p's and the process's are shown.
   */
  attach(source: MetricsSource): () => void;
  /** Observes one record's publish → receipt delay. */
  observeDelivery(seconds: number): void;
  /** The exposition for GET /metrics, normalised so that `promtool check metrics` accepts it. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Creates the registry with process, libp2p and plexus metrics; see `attach` for the latter. */
export function createMetricsRegistry(): MetricsRegistry {
  const registry = new Registry();
  let attached: MetricsSource | undefined;
  const source = () => attached;
  // Node's process metrics (cpu, heap, event loop lag) come with libp2p's default collection.
  const libp2pMetrics = prometheusMetrics({
    registry,
    collectDefaultMetrics: true,
    defaultMetrics: { eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS },
  });
  const registers = [registry];

  const perNode = (name: string, help: string, pick: (r: TelemetryRecord) => number | null, scale = 1) =>
    new Gauge({
      name,
      help,
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const r of source()?.records() ?? []) {
          const v = pick(r);
          if (v != null) this.set({ node: r.node }, v * scale);
        }
      },
    });
  perNode('plexus_node_cpu_percent', 'CPU busy percent of the node (all cores).', (r) => r.cpu.pct);
  perNode('plexus_node_cpu_cores', 'CPU cores of the node.', (r) => r.cpu.cores);
  perNode('plexus_node_load1', 'One-minute load average of the node.', (r) => r.cpu.load[0]);
  perNode('plexus_node_memory_used_bytes', 'Memory in use on the node.', (r) => r.mem.usedMb, 1024 * 1024);
  perNode('plexus_node_memory_total_bytes', 'Total memory of the node.', (r) => r.mem.totalMb, 1024 * 1024);
  perNode(
    'plexus_node_disk_used_bytes',
    'Used bytes of the root filesystem.',
    (r) => r.disk.usedGb,
    1024 ** 3,
  );
  perNode('plexus_node_disk_total_bytes', 'Size of the root filesystem.', (r) => r.disk.totalGb, 1024 ** 3);
  perNode('plexus_node_network_receive_bytes_per_second', 'Bytes received per second.', (r) => r.net.rxBps);
  perNode('plexus_node_network_transmit_bytes_per_second', 'Bytes sent per second.', (r) => r.net.txBps);
  perNode('plexus_node_uptime_seconds', 'Uptime of the node agent.', (r) => r.uptimeS);
  perNode(
    'plexus_node_telemetry_timestamp_seconds',
    'When the node last published telemetry.',
    (r) => r.ts / 1000,
  );

  const perApp = (
    name: string,
    help: string,
    pick: (a: TelemetryRecord['apps'][number]) => number | null,
    scale = 1,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['node', 'app'],
      registers,
      collect() {
        this.reset();
        for (const r of source()?.records() ?? []) {
          for (const a of r.apps) {
            const v = pick(a);
            if (v != null) this.set({ node: r.node, app: a.name }, v * scale);
          }
        }
      },
    });
  new Gauge({
    name: 'plexus_app_status',
    help: 'App state as a state set: 1 for the current status, 0 for the others.',
    labelNames: ['node', 'app', 'status'],
    registers,
    collect() {
      this.reset();
      for (const r of source()?.records() ?? []) {
        for (const a of r.apps) {
          for (const st of ['deploying', 'running', 'stopped', 'failed', 'crashloop'])
            this.set({ node: r.node, app: a.name, status: st }, a.status === st ? 1 : 0);
        }
      }
    },
  });
  perApp('plexus_app_cpu_percent', 'CPU percent of one core used by the app.', (a) => a.cpuPct);
  perApp('plexus_app_memory_bytes', 'Resident memory of the app.', (a) => a.memMb, 1024 * 1024);
  perApp('plexus_app_restarts', 'Restarts of the app since it was deployed.', (a) => a.restarts);

  // Docker/Podman containers beside the apps (issue 18), on nodes with an engine socket.
  const perContainer = (
    name: string,
    help: string,
    labels: string[],
    pick: (c: NonNullable<TelemetryRecord['containers']>[number]) => [Record<string, string>, number | null],
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['node', 'container', ...labels],
      registers,
      collect() {
        this.reset();
        for (const r of source()?.records() ?? []) {
          for (const c of r.containers ?? []) {
            const [extra, v] = pick(c);
            if (v != null) this.set({ node: r.node, container: c.name || c.id, ...extra }, v);
          }
        }
      },
    });
  perContainer(
    'plexus_container_info',
    'A container on the node: 1, with its id, image, state and health.',
    ['id', 'image', 'state', 'health'],
    (c) => [{ id: c.id, image: c.image, state: c.state, health: c.health }, 1],
  );
  perContainer('plexus_container_cpu_percent', 'CPU percent of one core used by the container.', [], (c) => [
    {},
    c.cpuPct,
  ]);
  perContainer('plexus_container_memory_bytes', 'Memory of the container, page cache excluded.', [], (c) => [
    {},
    c.memMb == null ? null : c.memMb * 1024 * 1024,
  ]);
  perNode(
    'plexus_node_containers_omitted',
    'Containers the record left out (its caps).',
    (r) => r.containersOmitted ?? null,
  );

  new Gauge({
    name: 'plexus_mesh_peers',
    help: 'Other members by liveness state (online, suspect, down).',
    labelNames: ['state'],
    registers,
    collect() {
      const counts: Record<PeerState, number> = { online: 0, suspect: 0, down: 0 };
      for (const p of source()?.peers() ?? []) counts[p.state]++;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'plexus_mesh_connected_peers',
    help: 'Other members we hold a connection to, by path (direct, punched through NAT, or relayed).',
    labelNames: ['path'],
    registers,
    collect() {
      const counts = { direct: 0, punched: 0, relayed: 0 };
      for (const p of source()?.peers() ?? []) if (p.connection !== 'none') counts[p.connection]++;
      for (const [path, n] of Object.entries(counts)) this.set({ path }, n);
    },
  });
  new Counter({
    name: 'plexus_gossip_messages_received_total',
    help: 'Gossip messages delivered to this agent after validation, by topic.',
    labelNames: ['topic'],
    registers,
    collect() {
      this.reset();
      for (const [topic, n] of source()?.gossipReceived() ?? []) this.inc({ topic }, n);
    },
  });
  new Counter({
    name: 'plexus_telemetry_records_published_total',
    help: 'Telemetry records this agent published.',
    registers,
    collect() {
      this.reset();
      this.inc(source()?.counts().published ?? 0);
    },
  });
  new Counter({
    name: 'plexus_telemetry_records_received_total',
    help: 'Telemetry records received, by result (accepted, ignored as not newer, or dropped with a reason).',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      const c = source()?.counts();
      if (!c) return;
      this.inc({ result: 'accepted' }, c.accepted);
      this.inc({ result: 'ignored' }, c.ignored);
      for (const [reason, n] of Object.entries(c.rejected))
        this.inc({ result: `dropped_${reason.replace('-', '_')}` }, n);
    },
  });
  new Counter({
    name: 'plexus_panel_heartbeats_total',
    help: 'Panel heartbeats by outcome: sent, failed (attempts) and dropped (queue full or refused).',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      const p = source()?.panel();
      if (!p) return;
      this.inc({ result: 'sent' }, p.sent);
      this.inc({ result: 'failed' }, p.failed);
      this.inc({ result: 'dropped' }, p.dropped);
    },
  });
  new Gauge({
    name: 'plexus_panel_queue_length',
    help: 'Panel heartbeats waiting for the panel to answer (at most 10).',
    registers,
    collect() {
      this.set(source()?.panel()?.queued ?? 0);
    },
  });
  const delay = new Histogram({
    name: 'plexus_telemetry_delivery_delay_seconds',
    help: "Delay from a record's publish time at its node to its receipt here (includes clock skew).",
    buckets: DELIVERY_DELAY_BUCKETS,
    registers,
  });
  return {
    registry,
    libp2pMetrics,
    attach(next) {
      attached = next;
      return () => {
        if (attached === next) attached = undefined;
      };
    },
    observeDelivery: (s) => delay.observe(Math.max(0, s)),
    render: async () => ({
      contentType: registry.contentType,
      body: normalizeExposition(await registry.metrics()),
    }),
  };
}

/**
 * Fixes the names promtool's lint refuses in metrics we do not own (libp2p's and prom-client's
 * defaults): a gauge may not end in `_total` (renamed without it, or dropped when that name is
 * taken — prom-client's `nodejs_active_handles_total` is just the sum of `nodejs_active_handles`),
 * and a `_milliseconds` gauge becomes `_seconds` with its values divided by 1000.
 */
export function normalizeExposition(text: string): string {
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1], m[2]);
  const rename = new Map<string, { to: string | null; scale: number }>();
  for (const [name, type] of types) {
    if (type === 'counter' || type === 'histogram' || type === 'summary') continue;
    if (name.endsWith('_total')) {
      const base = name.slice(0, -'_total'.length);
      // `_bucket`, `_count` and `_sum` are reserved for histograms and summaries.
      const to = /_(bucket|count|sum)$/.test(base) ? `${base}s` : base;
      rename.set(name, { to: types.has(to) ? null : to, scale: 1 });
    } else if (name.endsWith('_milliseconds')) {
      rename.set(name, { to: `${name.slice(0, -'_milliseconds'.length)}_seconds`, scale: 1 / 1000 });
    }
  }
  if (rename.size === 0) return text;
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const name = line.startsWith('#') ? line.split(' ')[2] : /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(line)?.[0];
    const r = name ? rename.get(name) : undefined;
    if (!r || !name) {
      out.push(line);
      continue;
    }
    if (r.to === null) continue;
    if (line.startsWith('#')) {
      out.push(line.replace(` ${name} `, ` ${r.to} `));
      continue;
    }
    const space = line.lastIndexOf(' ');
    const value = Number(line.slice(space + 1));
    const scaled = r.scale === 1 || !Number.isFinite(value) ? line.slice(space + 1) : String(value * r.scale);
    out.push(`${r.to}${line.slice(name.length, space)} ${scaled}`);
  }
  return out.join('\n');
}
