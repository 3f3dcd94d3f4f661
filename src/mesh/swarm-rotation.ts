/**
 * Swarm-key rotation (docs/mesh.md, Rotating the swarm key). The admin's node makes a key and an
 * admin-signed record `{epoch, keyId, switchAt, at, revoked}` (rotation-record.ts). Every node
 * says in its telemetry record the newest epoch whose key it holds (`swarmEpoch`); a member that
 * sees a newer one fetches it from that member over SWARM_KEY_PROTOCOL, which answers live
 * members only, checks the key back to the admin key, keeps it on disk (swarm-store.ts) and, at
 * `switchAt`, switches new connections to it (swarm-key.ts): open connections, and the tunnels
 * and streams on them, keep the old key, so nothing drops. Having fetched it, it says so in its
 * own record at once, so members that cannot reach the admin's node fetch it from one that can.
 * A node that was off during a rotation asks a join door instead (rekey.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { DataPaths } from '../config/paths.ts';
import { toErrorBody } from '../core/errors.ts';
import type { SignedBlob } from '../crypto/signed.ts';
import type { Logger } from '../logging/index.ts';
import type { SwarmKeyGrant } from './admission.ts';
import type { Connector } from './connector.ts';
import {
  MAX_ROTATION_BYTES,
  MAX_ROTATION_REVOKED,
  PROTOCOL_TIMEOUT_MS,
  ROTATION_LEAD_MS,
  SWARM_KEY_PROTOCOL,
} from './constants.ts';
import { NotAdminError, SwarmKeyError } from './errors.ts';
import { jsonChannel, replyAndClose } from './json-stream.ts';
import type { NodeKeys } from './keys.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';
import { Rekeyer } from './rekey.ts';
import {
  keyIdOf,
  openRotation,
  type RotationPayload,
  signRotation,
  type VerifiedKey,
  verifyKeyGrant,
} from './rotation-record.ts';
import type { SwarmKeySwitch } from './swarm-key.ts';
import { commitSwitch, loadSwarmState, savePending } from './swarm-store.ts';
import type { TelemetryBus } from './telemetry.ts';

/** Options of the rotation service: where the keys live, and the node's keys (the admin's, if here). */
export interface SwarmRotationInit {
  paths: DataPaths;
  keys: Pick<NodeKeys, 'identity' | 'adminPublicKey' | 'admin'>;
}

/** What the rotation service uses. */
export interface SwarmRotationComponents {
  swarmKey: SwarmKeySwitch;
  membership: Membership;
  logger: Logger;
}

/** What the running mesh lends the service once libp2p is up. */
export interface SwarmRotationLinks {
  node: PlexusLibp2p;
  /** Members' records say which epoch each holds, and where its join door is. */
  telemetry: TelemetryBus;
  /** Redialled at once after a switch (a member we lost may only be reachable on the new key). */
  connector: Pick<Connector, 'connectAll'>;
  /** Publishes our telemetry record now (it carries `swarmEpoch`). */
  announce(): Promise<void>;
}

/** A reply on SWARM_KEY_PROTOCOL. */
type PullReply =
  | { ok: true; psk: string; rotation: SignedBlob }
  | { ok: false; error: { code: string; message: string } };

/** The state of the swarm key, for `rotate-swarm-key --status`. */
export interface SwarmKeyStatus {
  epoch: number;
  keyId: string;
  pending: { epoch: number; switchAt: number } | null;
}

/** Holds the current and pending swarm keys, fetches newer ones, and switches at their time. */
export class SwarmRotation {
  readonly #init: SwarmRotationInit;
  readonly #c: SwarmRotationComponents;
  /** The admin's record of the key in use (none for epoch 0). */
  #current: { rotation: SignedBlob; payload: RotationPayload } | undefined;
  #next: VerifiedKey | undefined;
  #timer: NodeJS.Timeout | undefined;
  #links: SwarmRotationLinks | undefined;
  #rekey: Rekeyer | undefined;
  #pulling = false;

  /** Loads the keys on disk; a pending key whose time has come is switched to at once. */
  constructor(init: SwarmRotationInit, components: SwarmRotationComponents) {
    this.#init = init;
    this.#c = components;
    const { swarmKey, logger } = components;
    const { adminPublicKey } = init.keys;
    const state = loadSwarmState(init.paths, adminPublicKey, swarmKey.psk, swarmKey.epoch);
    for (const w of state.warnings) logger.warn(w);
    if (state.epoch !== swarmKey.epoch) swarmKey.use(state.psk, state.epoch);
    if (state.current) {
      try {
        const payload = openRotation(state.current, adminPublicKey);
        if (payload.keyId !== keyIdOf(swarmKey.psk) || payload.epoch !== swarmKey.epoch)
          throw new Error('it is not the record of swarm.key');
        this.#current = { rotation: state.current, payload };
      } catch (err) {
        // Without it, this node can still use its key; it just cannot vouch for it to others.
        logger.warn({ err: (err as Error).message }, 'ignoring the record of the swarm key in use');
      }
    }
    if (state.next) this.#schedule(state.next);
  }

  /**
   * Serves SWARM_KEY_PROTOCOL, states our epoch in our telemetry record, fetches newer keys that
   * members' records announce, and starts the rekeyer (the mesh calls it once libp2p exists).
   */
  async start(links: SwarmRotationLinks): Promise<void> {
    const { node, telemetry } = links;
    const { membership, logger } = this.#c;
    const { paths, keys } = this.#init;
    this.#links = links;
    const rekey = new Rekeyer(
      { paths, nodeKey: keys.identity.protobuf, adminPublicKey: keys.adminPublicKey },
      { node, membership, rotation: this, logger },
    );
    this.#rekey = rekey;
    await node.handle(SWARM_KEY_PROTOCOL, (stream, conn) => this.serve(stream, conn), {
      runOnLimitedConnection: true,
    });
    telemetry.addProvider(() => ({ swarmEpoch: this.heldEpoch }));
    telemetry.on('record', (record) => {
      this.noticed(record.peerId, record.swarmEpoch);
      rekey.noteDoors(record.peerId, record.door);
    });
    rekey.start();
  }

  /** Stops the switch timer and the rekeyer (a pending key stays on disk for the next start). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#rekey?.stop();
    this.#links = undefined;
  }

  /** The newest epoch whose key this node holds, in use or pending (its telemetry says so). */
  get heldEpoch(): number {
    return Math.max(this.#c.swarmKey.epoch, this.#next?.payload.epoch ?? 0);
  }

  /** The key in use with its record, as the join door hands it to a member or a new node. */
  grant(peer?: string): SwarmKeyGrant {
    this.#refuseExcluded(peer, this.#current?.payload);
    const { swarmKey } = this.#c;
    return {
      psk: swarmKey.psk.toString('hex'),
      epoch: swarmKey.epoch,
      ...(this.#current ? { rotation: this.#current.rotation } : {}),
    };
  }

  /** Where the key stands. */
  status(): SwarmKeyStatus {
    const { swarmKey } = this.#c;
    const next = this.#next?.payload;
    return {
      epoch: swarmKey.epoch,
      keyId: keyIdOf(swarmKey.psk),
      pending: next ? { epoch: next.epoch, switchAt: next.switchAt } : null,
    };
  }

  /** Makes and signs a new key (admin only) that every member switches to in ROTATION_LEAD_MS. */
  rotate(now = Date.now()): { epoch: number; keyId: string; switchAt: number; revoked: string[] } {
    const admin = this.#init.keys.admin;
    if (!admin) throw new NotAdminError('rotating the swarm key');
    const psk = randomBytes(32);
    const revoked = this.#c.membership
      .list({ includeRevoked: true })
      .filter((m) => m.revokedAt !== null)
      .sort((a, b) => (b.revokedAt ?? 0) - (a.revokedAt ?? 0))
      .slice(0, MAX_ROTATION_REVOKED)
      .map((m) => m.peerId);
    const payload = {
      epoch: this.heldEpoch + 1,
      keyId: keyIdOf(psk),
      switchAt: now + ROTATION_LEAD_MS,
      at: now,
      revoked,
    };
    const rotation = signRotation(payload, admin);
    this.adopt(
      verifyKeyGrant({ psk: psk.toString('hex'), rotation }, this.#init.keys.adminPublicKey, this.heldEpoch),
    );
    this.#c.logger.info({ epoch: payload.epoch, switchAt: payload.switchAt }, 'swarm key rotated');
    return { epoch: payload.epoch, keyId: payload.keyId, switchAt: payload.switchAt, revoked };
  }

  /** Keeps a verified newer key: on disk first, then in use at its `switchAt` (or now). */
  adopt(key: VerifiedKey, now = Date.now()): void {
    if (key.payload.epoch <= this.heldEpoch) return;
    if (key.payload.switchAt <= now) {
      this.#switch(key);
    } else {
      savePending(this.#init.paths, this.#current?.rotation, key);
      this.#schedule(key);
      this.#c.logger.info(
        { epoch: key.payload.epoch, inMs: key.payload.switchAt - now },
        'received a new swarm key; switching at its time',
      );
    }
    void this.#links?.announce().catch(() => {});
  }

  /** A member's telemetry says it holds `epoch`: fetch that key from it if it is newer. */
  noticed(peerId: string, epoch: number | undefined): void {
    const links = this.#links;
    if (!links || epoch === undefined || epoch <= this.heldEpoch || this.#pulling) return;
    if (!this.#c.membership.isMember(peerId)) return;
    this.#pulling = true;
    this.pull(links.node, peerId)
      .catch((err) =>
        this.#c.logger.debug({ peer: peerId, err: (err as Error).message }, 'swarm key fetch failed'),
      )
      .finally(() => {
        this.#pulling = false;
      });
  }

  /** Fetches the newest key `peer` holds and adopts it. Throws SwarmKeyError or ProtocolError. */
  async pull(node: PlexusLibp2p, peer: PeerId | string): Promise<void> {
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    const target = typeof peer === 'string' ? peerIdFromString(peer) : peer;
    const stream = await node.dialProtocol(target, SWARM_KEY_PROTOCOL, {
      signal,
      runOnLimitedConnection: true,
    });
    const ch = jsonChannel(stream, MAX_ROTATION_BYTES + 1024);
    let reply: PullReply;
    try {
      await ch.write({ epoch: this.heldEpoch }, signal);
      reply = (await ch.read(signal)) as PullReply;
      await stream.close({ signal });
    } catch (err) {
      stream.abort(err as Error);
      throw err;
    }
    if (typeof reply !== 'object' || reply === null || reply.ok !== true) {
      const e = (reply as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      throw new SwarmKeyError(
        String(e?.code ?? 'BAD_REPLY').slice(0, 64),
        `the member refused the swarm key: ${String(e?.message ?? 'malformed reply').slice(0, 300)}`,
        'denied',
      );
    }
    this.adopt(verifyKeyGrant(reply, this.#init.keys.adminPublicKey, this.heldEpoch));
  }

  /** The handler of SWARM_KEY_PROTOCOL: the newest key held, to a live member only. */
  async serve(stream: Stream, conn: Connection): Promise<void> {
    const remote = conn.remotePeer.toString();
    const ch = jsonChannel(stream, 1024);
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    let reply: PullReply;
    try {
      const request = (await ch.read(signal)) as { epoch?: unknown } | null;
      reply = this.keyFor(remote, typeof request?.epoch === 'number' ? request.epoch : -1);
    } catch (err) {
      const body = toErrorBody(err);
      this.#c.logger.warn({ peer: remote, code: body.code }, 'refused a swarm key request');
      reply = { ok: false, error: { code: body.code, message: body.message } };
    }
    await replyAndClose(ch, reply, signal);
  }

  /** What SWARM_KEY_PROTOCOL answers `peer`, which holds `epoch`. Throws SwarmKeyError. */
  keyFor(peer: string, epoch: number): PullReply {
    if (!this.#c.membership.isMember(peer))
      throw new SwarmKeyError('NOT_A_MEMBER', 'only live members get the swarm key', 'denied');
    const newest =
      this.#next ?? (this.#current ? { ...this.#current, psk: this.#c.swarmKey.psk } : undefined);
    this.#refuseExcluded(peer, newest?.payload);
    if (!newest || this.heldEpoch <= epoch)
      throw new SwarmKeyError(
        'NO_NEWER_KEY',
        `this node holds no swarm key newer than epoch ${epoch}`,
        'not_found',
      );
    return { ok: true, psk: newest.psk.toString('hex'), rotation: newest.rotation };
  }

  /** A rotation names recently revoked nodes: no member hands them its key, whatever it knows. */
  #refuseExcluded(peer: string | undefined, payload: RotationPayload | undefined): void {
    if (peer && payload?.revoked.includes(peer))
      throw new SwarmKeyError('REVOKED', 'this node was revoked; join with a fresh data dir', 'denied');
  }

  #schedule(key: VerifiedKey): void {
    this.#next = key;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#switch(key), Math.max(0, key.payload.switchAt - Date.now()));
    this.#timer.unref();
  }

  #switch(key: VerifiedKey): void {
    const { swarmKey, logger } = this.#c;
    if (key.payload.epoch <= swarmKey.epoch) return;
    try {
      commitSwitch(this.#init.paths, key);
    } catch (err) {
      // Still switch: staying on the old key would cut this node off now; after a restart on
      // the old key it asks a join door for the new one (rekey.ts).
      logger.error({ err }, 'could not write the new swarm key to disk');
    }
    swarmKey.use(key.psk, key.payload.epoch);
    this.#current = { rotation: key.rotation, payload: key.payload };
    if (this.#next && this.#next.payload.epoch <= key.payload.epoch) {
      this.#next = undefined;
      clearTimeout(this.#timer);
    }
    logger.info({ epoch: key.payload.epoch }, 'new mesh connections now use the rotated swarm key');
    void this.#links?.connector.connectAll().catch(() => {});
  }
}
