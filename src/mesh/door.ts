/**
 * The join door: a listener of its own (`mesh.door`, port 7073 beside the default mesh port)
 * that speaks only the admission protocol (admission.ts), over Noise and without the swarm key,
 * so that a token need not carry the key. Strangers get nothing else here: the door node runs
 * no identify, ping, DHT or gossip. It is rate-limited per source address (connections by
 * libp2p's threshold, admission attempts by a token bucket), and closes every connection after
 * DOOR_CONNECTION_MS.
 */
import type { Connection } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Startable } from '../core/lifecycle.ts';
import type { Logger } from '../logging/index.ts';
import { type AdmitterComponents, admitHandler } from './admission.ts';
import {
  ADMIT_PROTOCOL,
  DEFAULT_DOOR_PORT,
  DEFAULT_MESH_PORT,
  DOOR_BURST,
  DOOR_CONNECTION_MS,
  DOOR_REFILL_MS,
} from './constants.ts';
import { createDoorNode } from './node.ts';

/** Options of the door. */
export interface DoorInit {
  nodeKey: Uint8Array;
  /** Multiaddrs to listen on (see `doorListenAddrs`). */
  listen: string[];
}

/** What the door needs from the mesh, beside the limiter it owns. */
export type DoorComponents = Omit<AdmitterComponents, 'allow'> & { logger: Logger };

/** The door listeners for a config: `auto` follows the mesh listen addresses. */
export function doorListenAddrs(door: 'auto' | 'off' | string[], meshListen: string[]): string[] {
  if (door === 'off') return [];
  if (door !== 'auto') return door;
  const out: string[] = [];
  for (const addr of meshListen) {
    const m = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d+)$/.exec(addr);
    if (!m) continue;
    // The default mesh port gets the default door port; any other (tests, several agents on one
    // host) an ephemeral one: tokens carry the address the door actually got.
    const port = Number(m[3]) === DEFAULT_MESH_PORT ? DEFAULT_DOOR_PORT : 0;
    out.push(`/${m[1]}/${m[2]}/tcp/${port}`);
  }
  return out;
}

/** A token bucket per source address, bounded in how many addresses it remembers. */
export class DoorLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #burst: number;
  readonly #refillMs: number;

  constructor(burst = DOOR_BURST, refillMs = DOOR_REFILL_MS) {
    this.#burst = burst;
    this.#refillMs = refillMs;
  }

  /** Takes one attempt from `source`'s budget; false when it has none left. */
  allow(source: string, now = Date.now()): boolean {
    const b = this.#buckets.get(source) ?? { tokens: this.#burst, at: now };
    b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) / this.#refillMs);
    b.at = now;
    this.#buckets.delete(source);
    this.#buckets.set(source, b);
    if (this.#buckets.size > 4096) this.#buckets.delete(this.#buckets.keys().next().value as string);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/** The IP part of a multiaddr, the unit the door rate-limits by. */
function sourceOf(addr: Multiaddr): string {
  const ip = addr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6');
  return ip?.value ?? addr.toString();
}

/** The join door. */
export class JoinDoor implements Startable {
  readonly #init: DoorInit;
  readonly #c: DoorComponents;
  readonly #limiter = new DoorLimiter();
  #node: Awaited<ReturnType<typeof createDoorNode>> | undefined;

  constructor(init: DoorInit, components: DoorComponents) {
    this.#init = init;
    this.#c = components;
  }

  /** Opens the listener (nothing when no door is configured). */
  async start(): Promise<void> {
    if (this.#init.listen.length === 0) return;
    const connections = new DoorLimiter(DOOR_BURST * 3, DOOR_REFILL_MS / 3);
    const node = await createDoorNode({
      nodeKey: this.#init.nodeKey,
      listen: this.#init.listen,
      gater: {
        // Before the Noise handshake: a flood from one address costs us a TCP accept only.
        denyInboundConnection: async (maConn) => !connections.allow(sourceOf(maConn.remoteAddr)),
        denyDialMultiaddr: async () => true,
        denyDialPeer: async () => true,
      },
    });
    await node.handle(
      ADMIT_PROTOCOL,
      admitHandler({ ...this.#c, allow: (remote) => this.#limiter.allow(remote) }),
      { maxInboundStreams: 4, maxOutboundStreams: 0 },
    );
    node.addEventListener('connection:open', (evt) => this.#bound(evt.detail));
    await node.start();
    this.#node = node;
    this.#c.logger.info({ addrs: this.addrs() }, 'join door open');
  }

  /** Closes the listener and every door connection. */
  async stop(): Promise<void> {
    await this.#node?.stop();
    this.#node = undefined;
  }

  /** Where joiners reach the door, each ending in `/p2p/<peer id>`. */
  addrs(): string[] {
    return this.#node?.getMultiaddrs().map((a) => a.toString()) ?? [];
  }

  /** No door connection outlives one exchange by much. */
  #bound(conn: Connection): void {
    // Closing a connection that already ended is a no-op, so the timer needs no cancelling.
    setTimeout(() => {
      if (conn.status === 'open') conn.abort(new Error('door time is up'));
    }, DOOR_CONNECTION_MS).unref();
  }
}
