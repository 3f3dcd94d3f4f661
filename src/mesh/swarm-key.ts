/**
 * The swarm key in use, which can change while the agent runs (`plexus rotate-swarm-key`):
 * libp2p asks the protector for every new connection, so a new key applies to new connections
 * while those already open keep theirs, and no tunnel or stream drops when the key changes.
 */
import type { ConnectionProtector } from '@libp2p/interface';
import { preSharedKey } from '@libp2p/pnet';
import { formatSwarmKey } from './keys.ts';

/** Holds the current swarm key and protects new connections with it. */
export class SwarmKeySwitch {
  #psk: Buffer;
  #epoch: number;
  #protector: ConnectionProtector;

  constructor(psk: Buffer, epoch: number) {
    this.#psk = psk;
    this.#epoch = epoch;
    this.#protector = preSharedKey({ psk: Buffer.from(formatSwarmKey(psk)) })();
  }

  /** The key in use. */
  get psk(): Buffer {
    return this.#psk;
  }

  /** Its epoch: 0 for the key made at init, +1 for each rotation. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Switches new connections to another key. */
  use(psk: Buffer, epoch: number): void {
    this.#psk = psk;
    this.#epoch = epoch;
    this.#protector = preSharedKey({ psk: Buffer.from(formatSwarmKey(psk)) })();
  }

  /** The factory libp2p takes as `connectionProtector`. */
  protector(): () => ConnectionProtector {
    return () => ({ protect: (conn, options) => this.#protector.protect(conn, options) });
  }
}
