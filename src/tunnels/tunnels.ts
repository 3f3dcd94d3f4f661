/**
 * The tunnel protocol, both ends over one mesh: the client side (client.ts) that opens tunnels
 * for forwards and the SOCKS proxy, the server side (server.ts) that serves them to members, and
 * what they share (ledger.ts): the limits on concurrent tunnels and the counters that
 * `plexus status` shows.
 */
import type { Startable } from '../core/lifecycle.ts';
import type { Logger } from '../logging/index.ts';
import type { Member, Mesh } from '../mesh/index.ts';
import type { OpenedTunnel } from './carriers/carrier.ts';
import type { DataListenerInit } from './carriers/data/listener.ts';
import { TunnelClient } from './client.ts';
import { COALESCE_BYTES, MAX_TUNNELS_PER_PEER, MAX_TUNNELS_TOTAL } from './constants.ts';
import { type TunnelCounters, TunnelLedger } from './ledger.ts';
import { TunnelServer } from './server.ts';
import type { ServiceDirectory } from './services.ts';
import type { Target } from './targets.ts';

/** Options of the tunnel protocol. */
export interface TunnelsInit {
  /** Concurrent tunnels to or from one peer; default MAX_TUNNELS_PER_PEER. */
  maxPerPeer?: number;
  /** Concurrent tunnels in total; default MAX_TUNNELS_TOTAL. */
  maxTotal?: number;
  /** Coalesce socket reads up to this many bytes per stream write; default COALESCE_BYTES. */
  coalesceBytes?: number;
  /** Where the data listener binds (port 0: any free port), or undefined for no data path. */
  dataListen?: DataListenerInit;
}

/** What the tunnel protocol uses; the mesh is read at use time, so it may start later. */
export interface TunnelsComponents {
  mesh: Mesh;
  services: ServiceDirectory;
  logger: Logger;
}

/** Both ends of the tunnel protocol. */
export class Tunnels implements Startable {
  readonly #ledger: TunnelLedger;
  readonly #client: TunnelClient;
  readonly #server: TunnelServer;

  constructor(init: TunnelsInit, components: TunnelsComponents) {
    const { mesh, services, logger } = components;
    const maxPerPeer = init.maxPerPeer ?? MAX_TUNNELS_PER_PEER;
    const coalesceBytes = init.coalesceBytes ?? COALESCE_BYTES;
    const ledger = new TunnelLedger({ maxPerPeer, maxTotal: init.maxTotal ?? MAX_TUNNELS_TOTAL }, logger);
    this.#ledger = ledger;
    this.#server = new TunnelServer(
      { maxPerPeer, coalesceBytes, ...(init.dataListen ? { dataListen: init.dataListen } : {}) },
      {
        mesh,
        services,
        ledger,
        logger,
        adopt: (peer, data) => this.#client.dialer.adopt(peer, data),
        ask: (conn, body, maxBytes, signal) => this.#client.ask(conn, body, maxBytes, signal),
      },
    );
    this.#client = new TunnelClient(
      { maxPerPeer, coalesceBytes },
      {
        mesh,
        ledger,
        targetFor: (req) => this.#server.targetFor(req),
        reverseGrant: (peer, count) => this.#server.reverseGrant(peer, count),
        logger,
      },
    );
  }

  /** Registers the protocol handler and binds the data listener. */
  async start(): Promise<void> {
    await this.#server.start();
  }

  /** Unregisters the handler, closes the pools and the listener, and resets every open tunnel. */
  async stop(): Promise<void> {
    await this.#server.stop();
    this.#client.stop();
    this.#ledger.closeAll();
  }

  /** Cuts every tunnel to or from a peer and forgets its data tickets (it was revoked). */
  dropPeer(peer: string): void {
    this.#client.dropPeer(peer);
    this.#server.forget(peer);
    this.#ledger.closePeer(peer);
  }

  /** Opens a tunnel to `target` (client.ts says how, and what `optimistic` changes). */
  open(target: Target, signal?: AbortSignal, opts: { optimistic?: boolean } = {}): Promise<OpenedTunnel> {
    return this.#client.open(target, signal, opts);
  }

  /** Resolves a node name to a live member (cached a moment); throws UnknownNodeError. */
  resolve(name: string): Member {
    return this.#client.resolve(name);
  }

  /** Opens data connections to a node ahead of use (a forward to it was added). */
  warm(node: string): void {
    this.#client.warm(node);
  }

  /** Open tunnels and lifetime totals. */
  counters(): TunnelCounters {
    const c = this.#ledger.counts;
    const dialer = this.#client.dialer;
    return {
      active: c.inbound + c.outbound,
      ...c,
      dataPooled: dialer.pooled(),
      dataWaiting: this.#ledger.dataWaiting,
      dataPort: this.#server.dataPort,
      splicePort: this.#server.splicePort,
      dataPaths: dialer.states(),
      splices: this.#server.splices(),
    };
  }
}
