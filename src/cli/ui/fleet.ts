/**
 * The dashboard's live view of the fleet, kept by `plexus ui` and pushed to every open page
 * (docs/ui.md). Nodes come from one long-lived `telemetry.watch` on the entry agent, which
 * answers again as soon as a record arrives (an app's state change is gossiped at once), so the
 * page shows a change within the gossip's delay. The topology's edges need each node's own view
 * of its connections: `telemetry.nodes` on every node, every EDGE_POLL_MS (relayed to NAT'd
 * nodes like any command). Who we are (role, grants) comes from `operator.list`.
 */
import type { AgentClient } from '../client.ts';

/** A node as `telemetry.nodes` reports it. */
export interface NodeRow {
  name: string;
  peerId: string;
  self: boolean;
  state: string;
  connection: string;
  rttMs: number | null;
  telemetry: Record<string, unknown> | null;
}

/** One link of the topology, as the node named `a` sees it. */
export interface Edge {
  a: string;
  b: string;
  kind: string;
  rttMs: number | null;
}

/** What the operator key may do, from its grant. */
export interface Me {
  kid: string;
  role: string;
  exec: boolean;
  shell: boolean;
  tenant: string | null;
}

/** The snapshot every page gets. */
export interface FleetSnapshot {
  at: number;
  entry: string | null;
  me: Me | null;
  nodes: NodeRow[];
  edges: Edge[];
  /** The last failure to reach the fleet, shown on the page; null when all is well. */
  problem: string | null;
}

/** How often every node is asked for its connections (the edges). */
const EDGE_POLL_MS = 10_000;
/** Wait before reopening a watch that ended or failed. */
const RETRY_MS = 1_000;

/** Keeps the snapshot and tells subscribers when it changes. */
export class FleetHub {
  readonly #clientFor: (node?: string) => AgentClient;
  readonly #kid: string;
  readonly #subscribers = new Set<(s: FleetSnapshot) => void>();
  readonly #edgesOf = new Map<string, Edge[]>();
  readonly #abort = new AbortController();
  #snap: FleetSnapshot = { at: 0, entry: null, me: null, nodes: [], edges: [], problem: null };
  #edgeTimer: NodeJS.Timeout | undefined;

  constructor(clientFor: (node?: string) => AgentClient, kid: string) {
    this.#clientFor = clientFor;
    this.#kid = kid;
  }

  /** The latest snapshot. */
  get snapshot(): FleetSnapshot {
    return this.#snap;
  }

  /** Calls `f` on every change; returns the unsubscribe function. */
  subscribe(f: (s: FleetSnapshot) => void): () => void {
    this.#subscribers.add(f);
    return () => this.#subscribers.delete(f);
  }

  /** Starts the watch and the edge polls; they run until stop(). */
  start(): void {
    void this.#watchLoop();
    const poll = () => {
      void this.#pollEdges().finally(() => {
        if (!this.#abort.signal.aborted) this.#edgeTimer = setTimeout(poll, EDGE_POLL_MS);
      });
    };
    this.#edgeTimer = setTimeout(poll, 500);
  }

  stop(): void {
    this.#abort.abort();
    clearTimeout(this.#edgeTimer);
  }

  /** Resolves once the first snapshot of the nodes is in (or the deadline passes). */
  async ready(timeoutMs: number): Promise<void> {
    if (this.#snap.nodes.length) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, timeoutMs);
      const off = this.subscribe((s) => s.nodes.length && done());
      function done() {
        clearTimeout(t);
        off();
        resolve();
      }
    });
  }

  #publish(patch: Partial<FleetSnapshot>): void {
    this.#snap = { ...this.#snap, ...patch, at: Date.now() };
    for (const f of this.#subscribers) f(this.#snap);
  }

  async #watchLoop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const entry = this.#clientFor();
      try {
        if (!this.#snap.me) await this.#loadMe(entry);
        await entry.call(
          'telemetry.watch',
          {},
          {
            signal,
            onData: (d) => {
              const nodes = (d as { nodes?: NodeRow[] }).nodes;
              if (!Array.isArray(nodes)) return;
              const self = nodes.find((n) => n.self);
              if (self) this.#edgesOf.set(self.name, edgesFrom(self.name, nodes));
              this.#publish({ nodes, entry: self?.name ?? null, edges: this.#edges(), problem: null });
            },
          },
        );
      } catch (err) {
        if (signal.aborted) return;
        this.#publish({ problem: (err as Error).message });
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }

  async #loadMe(entry: AgentClient): Promise<void> {
    const keys = (await entry.call('operator.list')) as (Me & { state: string })[];
    const mine = keys.find((k) => k.kid === this.#kid && k.state === 'active');
    this.#publish({
      me: mine
        ? { kid: mine.kid, role: mine.role, exec: mine.exec, shell: mine.shell, tenant: mine.tenant }
        : { kid: this.#kid, role: 'none', exec: false, shell: false, tenant: null },
    });
  }

  async #pollEdges(): Promise<void> {
    const others = this.#snap.nodes.filter((n) => !n.self && n.state === 'online');
    await Promise.all(
      others.map(async (n) => {
        try {
          const nodes = (await this.#clientFor(n.name).call('telemetry.nodes')) as NodeRow[];
          this.#edgesOf.set(n.name, edgesFrom(n.name, nodes));
        } catch {
          // An unreachable node keeps its last known edges until it answers again.
        }
      }),
    );
    const known = new Set(this.#snap.nodes.map((n) => n.name));
    for (const name of this.#edgesOf.keys()) if (!known.has(name)) this.#edgesOf.delete(name);
    this.#publish({ edges: this.#edges() });
  }

  /** One edge per pair of nodes; the entry's word first, since it is the freshest. */
  #edges(): Edge[] {
    const seen = new Map<string, Edge>();
    const order = [...this.#edgesOf.keys()].sort((x, y) =>
      x === this.#snap.entry ? -1 : y === this.#snap.entry ? 1 : 0,
    );
    for (const name of order)
      for (const e of this.#edgesOf.get(name) ?? []) {
        const key = [e.a, e.b].sort().join('\n');
        if (!seen.has(key)) seen.set(key, e);
      }
    return [...seen.values()];
  }
}

/** The live connections a node reports, as edges from it. */
function edgesFrom(self: string, nodes: NodeRow[]): Edge[] {
  return nodes
    .filter((n) => !n.self && n.state === 'online' && n.connection !== 'none')
    .map((n) => ({ a: self, b: n.name, kind: n.connection, rttMs: n.rttMs }));
}
