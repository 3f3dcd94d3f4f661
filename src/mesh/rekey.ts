/**
 * Catching up with a rotation missed while off (docs/mesh.md, Rotating the swarm key). A node
 * that still has the old swarm key cannot connect to anyone: pnet fails before Noise. So when it
 * has had no member connection for REKEY_AFTER_MS, and every REKEY_INTERVAL_MS while that
 * lasts, it asks members' join doors (which speak Noise without pnet) for the key with
 * `{type: 'rekey'}`. The door knows it by its Noise-authenticated peer ID and answers a live
 * member only; the key is checked back to the admin key like any other (rotation-record.ts).
 * The doors are learnt from members' telemetry records and kept in network.json, since a
 * restarted node has no records yet.
 */
import { multiaddr } from '@multiformats/multiaddr';
import type { DataPaths } from '../config/paths.ts';
import type { Logger } from '../logging/index.ts';
import { askDoor } from './admission.ts';
import {
  ADMIT_PROTOCOL,
  MAX_KNOWN_DOORS,
  PROTOCOL_TIMEOUT_MS,
  REKEY_AFTER_MS,
  REKEY_INTERVAL_MS,
} from './constants.ts';
import type { Membership } from './membership.ts';
import { createJoinNode, type PlexusLibp2p } from './node.ts';
import { type VerifiedKey, verifyKeyGrant } from './rotation-record.ts';
import { loadDoors, saveDoors } from './swarm-store.ts';

/** How often the rekeyer checks whether this node is cut off. */
const CHECK_MS = 5000;
/** Doors asked per attempt (each costs a dial and a Noise handshake). */
const DOORS_PER_ATTEMPT = 8;

/** Options of the rekeyer. */
export interface RekeyInit {
  paths: DataPaths;
  nodeKey: Uint8Array;
  adminPublicKey: Uint8Array;
}

/** What the rekeyer uses. */
export interface RekeyComponents {
  node: PlexusLibp2p;
  membership: Membership;
  /** The rotation service (swarm-rotation.ts): the epoch held, and where a fetched key goes. */
  rotation: { readonly heldEpoch: number; adopt(key: VerifiedKey): void };
  logger: Logger;
}

/** Remembers members' join doors and asks them for the swarm key when this node is cut off. */
export class Rekeyer {
  readonly #init: RekeyInit;
  readonly #c: RekeyComponents;
  /** Door addresses by member, from their telemetry records. */
  readonly #doors = new Map<string, string[]>();
  #saved: string[];
  #cutOffSince = Date.now();
  #lastAttempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(init: RekeyInit, components: RekeyComponents) {
    this.#init = init;
    this.#c = components;
    this.#saved = loadDoors(init.paths);
  }

  /** Starts watching for being cut off. */
  start(): void {
    this.#timer = setInterval(() => void this.check(), CHECK_MS);
    this.#timer.unref();
  }

  /** Stops watching. */
  stop(): void {
    clearInterval(this.#timer);
  }

  /** A member's telemetry record named its join doors: keep them (bounded) across restarts. */
  noteDoors(peerId: string, addrs: string[] | undefined): void {
    if (!addrs?.length || !this.#c.membership.isMember(peerId)) return;
    const mine = addrs.filter((a) => a.endsWith(`/p2p/${peerId}`)).slice(0, 2);
    if (mine.join() === this.#doors.get(peerId)?.join()) return;
    this.#doors.set(peerId, mine);
    const all = [...this.#doors.values()].flat().slice(0, MAX_KNOWN_DOORS);
    if (all.join() === this.#saved.join()) return;
    try {
      saveDoors(this.#init.paths, all);
      this.#saved = all;
    } catch (err) {
      this.#c.logger.warn({ err }, 'could not keep members’ join doors in network.json');
    }
  }

  /** Asks the doors if this node has had no member connection for long enough. */
  async check(now = Date.now()): Promise<void> {
    const { node, membership } = this.#c;
    const self = node.peerId.toString();
    const alone = !membership.livePeerIds().some((id) => id !== self);
    if (alone || node.getPeers().some((p) => membership.isMember(p.toString()))) {
      this.#cutOffSince = now;
      return;
    }
    if (this.#busy || now - this.#cutOffSince < REKEY_AFTER_MS || now - this.#lastAttempt < REKEY_INTERVAL_MS)
      return;
    this.#lastAttempt = now;
    this.#busy = true;
    try {
      await this.rekey();
    } finally {
      this.#busy = false;
    }
  }

  /** Asks up to DOORS_PER_ATTEMPT doors for a newer swarm key; true if one gave it. */
  async rekey(): Promise<boolean> {
    const { membership, rotation, logger } = this.#c;
    const self = this.#c.node.peerId.toString();
    const doors = [...new Set([...this.#doors.values()].flat().concat(this.#saved))]
      .filter((a) => {
        const peer = a.split('/p2p/').at(-1) ?? '';
        return peer !== self && !membership.isRevoked(peer);
      })
      .sort(() => Math.random() - 0.5)
      .slice(0, DOORS_PER_ATTEMPT);
    if (doors.length === 0) {
      logger.warn('no member connection and no join door known to ask for the current swarm key');
      return false;
    }
    logger.info({ doors: doors.length }, 'no member connection: asking join doors for the current swarm key');
    const client = await createJoinNode({ nodeKey: this.#init.nodeKey, agentVersion: 'plexus-rekey' });
    await client.start();
    try {
      for (const addr of doors) {
        try {
          const stream = await client.dialProtocol(multiaddr(addr), ADMIT_PROTOCOL, {
            signal: AbortSignal.timeout(PROTOCOL_TIMEOUT_MS),
          });
          const grant = await askDoor(stream, { type: 'rekey' });
          if (grant.swarmKey.epoch <= rotation.heldEpoch) continue;
          rotation.adopt(verifyKeyGrant(grant.swarmKey, this.#init.adminPublicKey, rotation.heldEpoch));
          logger.info(
            { door: addr, epoch: grant.swarmKey.epoch },
            'got the current swarm key from a join door',
          );
          return true;
        } catch (err) {
          logger.debug({ door: addr, err: (err as Error).message }, 'rekey at a join door failed');
        }
      }
      return false;
    } finally {
      await Promise.resolve(client.stop()).catch(() => {});
    }
  }
}
