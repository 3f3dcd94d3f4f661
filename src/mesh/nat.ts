/**
 * NAT traversal, as one part of the mesh (issue 14; docs/mesh.md, NAT): answers dial-backs
 * (dialback.ts), decides this node's reachability (reachability.ts), and, when it is behind NAT
 * (found out, or said by the config), holds relay reservations (reservations.ts) so that every
 * member can reach it through a relay, while trying to replace relayed links by direct ones.
 */
import type { Connection } from '@libp2p/interface';
import type { Config } from '../config/index.ts';
import type { Logger } from '../logging/index.ts';
import { NAT_RESERVATIONS } from './constants.ts';
import { DialbackService } from './dialback.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';
import { HolePuncher, type PunchResult } from './punch.ts';
import { Reachability, type ReachabilityInit, type ReachabilityView } from './reachability.ts';
import { currentRelays, keepReservations } from './reservations.ts';
import type { TelemetryBus } from './telemetry.ts';

/** What `plexus status` shows of NAT traversal. */
export interface NatView extends ReachabilityView {
  /** Relays this node holds a reservation on (peer ids), and how many it wants. */
  relays: string[];
  reservationsWanted: number;
}

/** What NAT traversal uses. */
export interface NatComponents {
  node: PlexusLibp2p;
  membership: Membership;
  logger: Logger;
  telemetry: TelemetryBus;
  nameOf(peerId: string): string;
  /** A direct connection a hole punch made (`peers` shows it as `punched`). */
  punched(conn: Connection): void;
  /** Publishes this node's telemetry record now (its addresses or reachability changed). */
  announce(): Promise<void>;
}

/** The override the config makes, if any: `mesh.reservations` (older configs) or `mesh.reachability`. */
export function reachOverride(mesh: Config['mesh']): ReachabilityInit['override'] {
  if (mesh.reservations > 0)
    return {
      status: 'behind-nat',
      reason: `override: mesh.reservations: ${mesh.reservations} in config.yaml`,
    };
  if (mesh.reachability === 'behind-nat')
    return { status: 'behind-nat', reason: 'override: --behind-nat (mesh.reachability: behind-nat)' };
  if (mesh.reachability === 'public')
    return { status: 'public', reason: 'override: mesh.reachability: public in config.yaml' };
  return undefined;
}

/** Dial-backs, reachability and relay reservations. */
export class NatTraversal {
  readonly reachability: Reachability;
  readonly #c: NatComponents;
  readonly #mesh: Config['mesh'];
  readonly #dialback: DialbackService;
  readonly #puncher: HolePuncher;
  #keeping: Promise<void> | undefined;

  constructor(mesh: Config['mesh'], components: NatComponents) {
    this.#c = components;
    this.#mesh = mesh;
    this.#dialback = new DialbackService(components);
    this.reachability = new Reachability({ override: reachOverride(mesh) }, components);
    const reach = this.reachability;
    this.#puncher = new HolePuncher({
      ...components,
      behindNat: () => reach.view.status === 'behind-nat',
      ownObservedIp: () => reach.view.observed[0]?.split('/')[2],
    });
  }

  /** Serves dial-backs and starts watching reachability. */
  async start(): Promise<void> {
    await this.#dialback.start();
    await this.#puncher.start();
    // Members learn from this node's record whether it is behind NAT and where it is seen from:
    // a punch dials nothing else.
    this.#c.telemetry.addProvider(() => {
      const v = this.reachability.view;
      return { nat: { status: v.status, observed: v.observed.slice(0, 4) } };
    });
    // A new relay address or reachability is news for members: a node behind NAT is reached
    // through the addresses in its record, and waiting for the next one cost up to 5 s.
    let soon: NodeJS.Timeout | undefined;
    const announce = () => {
      clearTimeout(soon);
      soon = setTimeout(() => void this.#c.announce().catch(() => {}), 300);
    };
    const addrs = () => this.#c.node.getMultiaddrs().join(' ');
    let last = addrs();
    this.#c.node.addEventListener('self:peer:update', () => {
      if (addrs() === last) return;
      last = addrs();
      announce();
    });
    this.reachability.on('change', () => {
      announce();
      void this.tick();
    });
    this.reachability.start();
  }

  /** Stops the reachability timer. */
  stop(): void {
    this.reachability.stop();
  }

  /** Relay reservations wanted now: the configured count, 2 behind NAT, else none. */
  get reservationsWanted(): number {
    if (this.#mesh.reservations > 0) return this.#mesh.reservations;
    return this.reachability.view.status === 'behind-nat' ? NAT_RESERVATIONS : 0;
  }

  /** One pass of the reservation keeper (the mesh runs it every few seconds; cheap when not behind NAT). */
  tick(): Promise<void> {
    this.#puncher.tick();
    const wanted = this.reservationsWanted;
    if (wanted === 0) return Promise.resolve();
    const { node, membership, logger } = this.#c;
    this.#keeping ??= keepReservations(node, membership, wanted, logger).finally(() => {
      this.#keeping = undefined;
    });
    return this.#keeping;
  }

  /** Tries a hole punch to a member now (`plexus ping --until-direct`). */
  async punch(peerId: string): Promise<PunchResult> {
    // A punch needs this node's outside address: find it out now if no dial-back told it yet.
    if (this.reachability.view.observed.length === 0) await this.reachability.check();
    return this.#puncher.punch(peerId);
  }

  /** For `plexus status`. */
  view(): NatView {
    return {
      ...this.reachability.view,
      relays: [...currentRelays(this.#c.node)],
      reservationsWanted: this.reservationsWanted,
    };
  }
}
