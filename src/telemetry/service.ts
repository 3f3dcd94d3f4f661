/**
 * The telemetry service: fills this node's record (host figures, apps, services), publishes at
 * once when an app changes state, keeps history of every node's records, feeds the metrics, and
 * pushes heartbeats to a panel when one is configured. The gossip itself is the mesh's.
 */
import type { Logger } from '../logging/index.ts';
import {
  MAX_RECORD_APPS,
  MAX_RECORD_SERVICES,
  type Mesh,
  type PeerView,
  type TelemetryCounts,
  type TelemetryRecord,
} from '../mesh/index.ts';
import { AppHistory } from './app-history.ts';
import { type AppSnapshot, type AppSource, appsForRecord, ProcessSampler } from './app-source.ts';
import { APP_CHANGE_DEBOUNCE_MS } from './constants.ts';
import { ContainerCollector, type ContainerCollectorInit } from './containers.ts';
import { TelemetryHistory } from './history.ts';
import type { MetricsRegistry, MetricsSource } from './metrics.ts';
import { type PanelBeat, PanelPusher } from './panel.ts';
import { type HostSample, SystemCollector } from './system-collector.ts';

/** An exposed service as gossiped. */
export interface ServiceEntry {
  name: string;
  port: number;
}

/** Options of the telemetry service. */
export interface TelemetryInit {
  version: string;
  /** Panel push, when both url and token are set. */
  panel?: { url?: string; token?: string; intervalS: number };
  /** procfs root (tests); default `/proc`. */
  procRoot?: string;
  /** Docker/Podman containers in the record (issue 18); `false` turns the collector off. */
  containers?: ContainerCollectorInit | false;
}

/** What the telemetry service uses. */
export interface TelemetryComponents {
  mesh: Mesh;
  logger: Logger;
  /** App figures: the workload manager, or `noWorkloads` until it is wired. */
  apps: AppSource;
  /** Exposed services (tunnels); none when not wired. */
  services?: () => ServiceEntry[];
  /** The edge's domains and certificate problems (issue 18); none when no edge is installed. */
  edge?: () => TelemetryRecord['edge'];
  /** The agent's registry (built before the mesh); the service attaches its figures on start. */
  metrics?: MetricsRegistry;
}

/** One row of `plexus top`: this node or a peer, with its latest record. */
export interface NodeView {
  name: string;
  peerId: string;
  self: boolean;
  state: PeerView['state'];
  connection: PeerView['connection'] | 'self';
  rttMs: number | null;
  telemetry: TelemetryRecord | null;
}

/** The telemetry service. */
export class TelemetryService {
  readonly history: TelemetryHistory;
  /** The last hour of this node's own apps' CPU and memory (app-history.ts). */
  readonly appHistory: AppHistory;
  readonly #init: TelemetryInit;
  readonly #c: TelemetryComponents;
  readonly #collector: SystemCollector;
  readonly #sampler: ProcessSampler;
  readonly #containers: ContainerCollector | undefined;
  readonly #gossip = new Map<string, number>();
  readonly #unsubscribe: (() => void)[] = [];
  #panel: PanelPusher | undefined;
  #lastApps: AppSnapshot[] = [];
  #lastHost: HostSample | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #scrapeCache: { at: number; nodes: NodeView[] } | undefined;

  /** Builds the service without I/O; `start()` wires it to the mesh. */
  constructor(init: TelemetryInit, components: TelemetryComponents) {
    this.#init = init;
    this.#c = components;
    this.#collector = new SystemCollector({ procRoot: init.procRoot }, { logger: components.logger });
    this.#sampler = new ProcessSampler(init.procRoot);
    if (init.containers !== false)
      this.#containers = new ContainerCollector(init.containers ?? {}, { logger: components.logger });
    this.history = new TelemetryHistory({ intervalMs: components.mesh.intervalMs });
    this.appHistory = new AppHistory({ intervalMs: components.mesh.intervalMs });
  }

  /** Registers the record provider, the listeners and the metrics source, and starts the panel push. */
  start(): void {
    const { mesh, logger } = this.#c;
    const bus = mesh.telemetry;
    bus.addProvider(() => this.#provide());
    const onRecord = (r: TelemetryRecord) => {
      this.history.add(r);
      this.#c.metrics?.observeDelivery((Date.now() - r.ts) / 1000);
    };
    const onSelf = (r: TelemetryRecord) => {
      this.history.add(r);
      this.appHistory.add(r);
    };
    bus.on('record', onRecord);
    bus.on('self', onSelf);
    this.#unsubscribe.push(
      () => bus.off('record', onRecord),
      () => bus.off('self', onSelf),
    );

    const pubsub = mesh.libp2p.services.pubsub;
    const onMessage = (evt: CustomEvent<{ topic: string }>) => {
      this.#gossip.set(evt.detail.topic, (this.#gossip.get(evt.detail.topic) ?? 0) + 1);
    };
    pubsub.addEventListener('message', onMessage);
    this.#unsubscribe.push(() => pubsub.removeEventListener('message', onMessage));

    this.#unsubscribe.push(this.#c.apps.onChange(() => this.appsChanged()));
    if (this.#c.metrics) this.#unsubscribe.push(this.#c.metrics.attach(this.#metricsSource()));

    // A revoked node's history goes with it.
    const onRevoked = (r: { kind: string; subject: string }) => {
      if (r.kind === 'node') this.history.forget(r.subject);
    };
    mesh.membership.on('revoked', onRevoked);
    this.#unsubscribe.push(() => mesh.membership.off('revoked', onRevoked));

    const panel = this.#init.panel;
    if (panel?.url && panel.token) {
      this.#panel = new PanelPusher(
        { url: panel.url, token: panel.token, intervalS: panel.intervalS },
        { logger: logger.child({ part: 'panel' }), beat: () => this.panelBeat() },
      );
      this.#panel.start();
      logger.info({ intervalS: panel.intervalS }, 'panel push enabled');
    }
    // A first record right away, so peers see our figures without waiting a whole interval.
    void mesh.publishTelemetry().catch(() => {});
  }

  /** The mesh's telemetry bus (records in and out), for `telemetry.watch`. */
  get bus(): Mesh['telemetry'] {
    return this.#c.mesh.telemetry;
  }

  /** Stops the panel push and detaches the listeners and the metrics source. */
  stop(): void {
    clearTimeout(this.#debounce);
    this.#panel?.stop();
    for (const off of this.#unsubscribe.splice(0)) off();
  }

  /** Publishes at once (coalescing a burst) because an app changed state. */
  appsChanged(): void {
    if (this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.#c.mesh
        .publishTelemetry()
        .catch((err) => this.#c.logger.debug({ err }, 'immediate publish failed'));
    }, APP_CHANGE_DEBOUNCE_MS);
    this.#debounce.unref();
  }

  async #provide(): Promise<Partial<TelemetryRecord>> {
    const [host, apps, containers] = await Promise.all([
      this.#collector.sample(),
      this.#listApps(),
      this.#containers?.sample(),
    ]);
    this.#lastHost = host;
    const { netTotals: _totals, ...figures } = host;
    return {
      ...figures,
      ...(containers ? { containers: containers.containers, containersOmitted: containers.omitted } : {}),
      apps: await appsForRecord(apps, this.#sampler, MAX_RECORD_APPS),
      services: (this.#c.services?.() ?? []).slice(0, MAX_RECORD_SERVICES),
      ...(this.#c.edge?.() ? { edge: this.#c.edge() } : {}),
    };
  }

  async #listApps(): Promise<AppSnapshot[]> {
    try {
      this.#lastApps = await this.#c.apps.list();
    } catch (err) {
      // Keep the last known list: one failed listing must not make every app vanish from the fleet.
      this.#c.logger.warn({ err }, 'listing apps for telemetry failed');
    }
    return this.#lastApps;
  }

  /** This node and every peer with its latest record (for `plexus top`). */
  nodes(): NodeView[] {
    const { mesh } = this.#c;
    const self: NodeView = {
      name: mesh.name,
      peerId: mesh.peerId,
      self: true,
      state: 'online',
      connection: 'self',
      rttMs: null,
      telemetry: mesh.telemetry.self() ?? null,
    };
    return [
      self,
      ...mesh.peers().map((p) => ({
        name: p.name,
        peerId: p.peerId,
        self: false,
        state: p.state,
        connection: p.connection,
        rttMs: p.rttMs,
        telemetry: p.telemetry ?? null,
      })),
    ];
  }

  /** What /metrics reads at scrape time. */
  #metricsSource(): MetricsSource {
    const { mesh } = this.#c;
    // One scrape reads the node list from a dozen gauges: compute it once per scrape, not per gauge.
    const nodes = () => {
      const now = Date.now();
      if (!this.#scrapeCache || now - this.#scrapeCache.at > 250)
        this.#scrapeCache = { at: now, nodes: this.nodes() };
      return this.#scrapeCache.nodes;
    };
    return {
      self: () => mesh.name,
      records: () => nodes().flatMap((n) => (n.telemetry ? [n.telemetry] : [])),
      peers: () =>
        nodes().filter((n) => !n.self) as (NodeView & { connection: 'direct' | 'relayed' | 'none' })[],
      counts: (): TelemetryCounts => mesh.telemetry.counts,
      gossipReceived: () => this.#gossip,
      panel: () => this.#panel?.stats(),
    };
  }

  /** Panel counters, when panel push is on. */
  panelStats() {
    return this.#panel?.stats();
  }

  /** The current panel heartbeat, built from our latest record and app list. */
  async panelBeat(): Promise<PanelBeat> {
    const { mesh } = this.#c;
    const r = mesh.telemetry.self();
    const host = this.#lastHost ?? (await this.#collector.sample());
    const apps = r ? this.#lastApps : await this.#listApps();
    const figures = new Map((r?.apps ?? []).map((a) => [a.name, a]));
    const now = Date.now();
    return {
      server_id: mesh.name,
      timestamp: new Date(now).toISOString(),
      metrics: {
        cpu_percent: host.cpu.pct,
        ram_used_mb: host.mem.usedMb,
        ram_total_mb: host.mem.totalMb,
        disk_used_gb: host.disk.usedGb,
        disk_total_gb: host.disk.totalGb,
        load_average: host.cpu.load[0],
        network_in_bytes: host.netTotals.rxBytes,
        network_out_bytes: host.netTotals.txBytes,
      },
      containers: apps.slice(0, MAX_RECORD_APPS).map((a) => ({
        id: `${mesh.name}/${a.name}`,
        name: a.name,
        image: a.release ?? null,
        status: a.status,
        health: a.health ?? null,
        uptime_seconds:
          a.status === 'running' && a.uptimeS != null ? Math.max(0, Math.round(a.uptimeS)) : null,
        cpu_percent: a.cpuPct ?? figures.get(a.name)?.cpuPct ?? null,
        memory_mb: a.memMb ?? figures.get(a.name)?.memMb ?? null,
      })),
      agent_version: this.#init.version,
    };
  }
}
