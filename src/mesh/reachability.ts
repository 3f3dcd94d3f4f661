/**
 * Whether this node can be dialled (issue 14): `public`, `behind-nat` or `unknown`, and why.
 * Unless the config overrides it (`mesh.reachability`, which `join --behind-nat` sets), the node
 * asks up to DIALBACK_ASK members it is directly connected to for a dial-back (dialback.ts): one
 * success means it is dialable; every answer a failure means it is behind NAT (or a firewall),
 * and the mesh then holds relay reservations by itself. Checked shortly after the first member
 * connection, when its addresses change, and every REACH_RECHECK_MS: no steady background work.
 */
import { EventEmitter } from 'node:events';
import type { Connection } from '@libp2p/interface';
import type { Logger } from '../logging/index.ts';
import {
  DIALBACK_ASK,
  MAX_DIALBACK_PORTS,
  PROTOCOL_TIMEOUT_MS,
  REACH_FIRST_CHECK_MS,
  REACH_RECHECK_MS,
  REACH_RETRY_MS,
} from './constants.ts';
import { askDialback, observedEndpoint } from './dialback.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';

/** What this node believes of itself. */
export type ReachStatus = 'public' | 'behind-nat' | 'unknown';

/** `plexus status` shows this. */
export interface ReachabilityView {
  status: ReachStatus;
  /** Why, in a few words: "3 of 3 dial-backs failed", "override: mesh.reachability …". */
  reason: string;
  /** Where members saw this node's connections come from (a NAT gateway's address, if any). */
  observed: string[];
  /** When the last check ended (ms), or null (an override, or not checked yet). */
  checkedAt: number | null;
}

/** Options: an override from the config, if any. */
export interface ReachabilityInit {
  override?: { status: 'public' | 'behind-nat'; reason: string };
}

/** What the reachability check uses. */
export interface ReachabilityComponents {
  node: PlexusLibp2p;
  membership: Membership;
  logger: Logger;
  /** Member names for the reason text. */
  nameOf(peerId: string): string;
}

/** Decides and keeps this node's reachability; emits 'change' with the new view. */
export class Reachability extends EventEmitter<{ change: [ReachabilityView] }> {
  readonly #c: ReachabilityComponents;
  readonly #override: ReachabilityInit['override'];
  #view: ReachabilityView;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = 0;
  #running: Promise<void> | undefined;
  #lastStart = 0;
  #stopped = false;

  constructor(init: ReachabilityInit, components: ReachabilityComponents) {
    super();
    this.#c = components;
    this.#override = init.override;
    this.#view = init.override
      ? { ...init.override, observed: [], checkedAt: null }
      : { status: 'unknown', reason: 'no member asked yet', observed: [], checkedAt: null };
  }

  /** The current belief. */
  get view(): ReachabilityView {
    return this.#view;
  }

  /** Starts watching (nothing to do under an override). */
  start(): void {
    if (this.#override) return;
    const { node, membership } = this.#c;
    node.addEventListener('connection:open', (evt) => {
      // The first direct member connection (or any, while unknown and not asked of late).
      if (!membership.isMember(evt.detail.remotePeer.toString()) || !observedEndpoint(evt.detail.remoteAddr))
        return;
      if (this.#view.checkedAt === null || this.#view.status === 'unknown')
        this.#schedule(REACH_FIRST_CHECK_MS);
    });
    // Its own addresses changed (a new interface address, a new port; not a relay reservation).
    const direct = () =>
      node
        .getMultiaddrs()
        .filter((a) => observedEndpoint(a))
        .join(' ');
    let last = direct();
    node.addEventListener('self:peer:update', () => {
      if (direct() === last) return;
      last = direct();
      if (this.#view.checkedAt !== null) this.#schedule(REACH_FIRST_CHECK_MS);
    });
  }

  /** Stops the timer. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Checks now (unless a check runs already or an override holds); resolves when done. */
  check(): Promise<void> {
    if (this.#override || this.#stopped) return Promise.resolve();
    this.#running ??= this.#check().finally(() => {
      this.#running = undefined;
      this.#schedule(this.#view.status === 'unknown' ? REACH_RETRY_MS : REACH_RECHECK_MS);
    });
    return this.#running;
  }

  /**
   * Runs a check in `ms`, unless one is due sooner; never sooner than REACH_RETRY_MS after the
   * last one started, so that connections opening and closing cannot make it a loop.
   */
  #schedule(ms: number): void {
    if (this.#stopped) return;
    const when = Math.max(Date.now() + ms, this.#lastStart ? this.#lastStart + REACH_RETRY_MS : 0);
    if (this.#timer && this.#timerAt <= when) return;
    clearTimeout(this.#timer);
    this.#timerAt = when;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.check();
      },
      Math.max(0, when - Date.now()),
    );
    this.#timer.unref();
  }

  /** TCP ports this node listens on (not its relayed addresses). */
  #listenPorts(): number[] {
    const ports = new Set<number>();
    for (const a of this.#c.node.getMultiaddrs()) {
      const e = observedEndpoint(a);
      if (e) ports.add(e.port);
    }
    return [...ports].slice(0, MAX_DIALBACK_PORTS);
  }

  /** Direct connections to up to DIALBACK_ASK members, one per remote address where possible. */
  #askers(): Connection[] {
    const { node, membership } = this.#c;
    const byPeer = new Map<string, Connection>();
    for (const c of node.getConnections()) {
      const id = c.remotePeer.toString();
      if (c.status === 'open' && membership.isMember(id) && observedEndpoint(c.remoteAddr) && !byPeer.has(id))
        byPeer.set(id, c);
    }
    const all = [...byPeer.values()].sort(() => Math.random() - 0.5);
    const ips = new Set<string>();
    const picked: Connection[] = [];
    for (const c of all) {
      const ip = observedEndpoint(c.remoteAddr)?.ip ?? '';
      if (ips.has(ip)) continue;
      ips.add(ip);
      picked.push(c);
    }
    for (const c of all) if (!picked.includes(c)) picked.push(c);
    return picked.slice(0, DIALBACK_ASK);
  }

  async #check(): Promise<void> {
    this.#lastStart = Date.now();
    const ports = this.#listenPorts();
    const askers = this.#askers();
    if (ports.length === 0 || askers.length === 0) {
      if (this.#view.checkedAt === null)
        this.#set({
          ...this.#view,
          reason: ports.length ? 'no member connected directly yet' : 'no TCP listener',
        });
      return;
    }
    const replies = await Promise.all(
      askers.map((c) =>
        askDialback(c, ports, AbortSignal.timeout(PROTOCOL_TIMEOUT_MS))
          .then((r) => ({ peer: c.remotePeer.toString(), r }))
          .catch(() => undefined),
      ),
    );
    const answered: { peer: string; ok: boolean; observed: string }[] = [];
    for (const x of replies) {
      if (!x || 'error' in x.r) continue;
      answered.push({ peer: x.peer, ok: x.r.results.some((p) => p.ok), observed: x.r.observed });
    }
    const observed = [...new Set(answered.map((a) => a.observed.replace(/\/tcp\/\d+$/, '')))];
    const ok = answered.filter((a) => a.ok);
    const n = answered.length;
    const names = (xs: { peer: string }[]) => xs.map((a) => this.#c.nameOf(a.peer)).join(', ');
    const plural = n === 1 ? 'dial-back' : 'dial-backs';
    if (n === 0) {
      // Nobody answered (busy, rate-limited, gone): keep what we knew, say when it was.
      if (this.#view.checkedAt === null)
        this.#set({
          ...this.#view,
          reason: `${askers.length} member(s) asked, none answered a dial-back yet`,
        });
      return;
    }
    this.#set(
      ok.length > 0
        ? {
            status: 'public',
            reason: `${ok.length} of ${n} ${plural} succeeded (by ${names(ok)})`,
            observed,
            checkedAt: Date.now(),
          }
        : {
            status: 'behind-nat',
            reason: `${n} of ${n} ${plural} failed (by ${names(answered)}; seen from ${observed.join(', ')})`,
            observed,
            checkedAt: Date.now(),
          },
    );
  }

  #set(view: ReachabilityView): void {
    const changed = view.status !== this.#view.status;
    this.#view = view;
    if (changed) {
      this.#c.logger.info({ reachability: view.status, reason: view.reason }, 'reachability decided');
      this.emit('change', view);
    }
  }
}
