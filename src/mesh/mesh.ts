/**
 * The mesh service: owns the libp2p node and starts everything that keeps the private network
 * together, each in its own file: admission (admission.ts), membership gossip and sync
 * (membership-sync.ts), connections to every member and expulsion of strangers (connector.ts),
 * the telemetry bus on the wire (telemetry-gossip.ts) and what is known of each peer
 * (peer-directory.ts). It answers the questions the CLI asks (peers, ping, status, tokens).
 */

import type { Connection } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Config, DataPaths } from '../config/index.ts';
import type { ActionDef } from '../core/actions.ts';
import type { Startable } from '../core/lifecycle.ts';
import type { Logger } from '../logging/index.ts';
import type { Db } from '../store/index.ts';
import { meshActions } from './actions.ts';
import { addressHints, Connector } from './connector.ts';
import {
  CONNECT_INTERVAL_MS,
  MEMBERS_DIGEST_PROTOCOL,
  MEMBERS_PROTOCOL,
  MEMBERS_TOPIC,
  SYNC_INTERVAL_MS,
  TELEMETRY_TOPIC,
} from './constants.ts';
import { doorListenAddrs, JoinDoor } from './door.ts';
import { createGater } from './gater.ts';
import { repairGossipStreams } from './gossip-repair.ts';
import type { NodeKeys } from './keys.ts';
import { type Member, Membership } from './membership.ts';
import { MembershipSync } from './membership-sync.ts';
import { NatTraversal } from './nat.ts';
import { createNode, type NodeInit, type PlexusLibp2p } from './node.ts';
import { type NodeStatus, nodeStatus } from './node-status.ts';
import { type ConnectionPath, PeerDirectory, type PeerView, type PingResult } from './peer-directory.ts';
import { type PathPing, pingUntilDirect } from './ping-direct.ts';
import { rotationActions } from './rotation-actions.ts';
import { SwarmKeySwitch } from './swarm-key.ts';
import { SwarmRotation } from './swarm-rotation.ts';
import { TelemetryBus } from './telemetry.ts';
import { TelemetryGossip } from './telemetry-gossip.ts';
import { TokenLedger } from './token-ledger.ts';

/** Options of the mesh. */
export interface MeshInit {
  keys: NodeKeys;
  /** Where the keys live: a rotated swarm key is written there. */
  paths: DataPaths;
  config: Config;
  version: string;
  /** libp2p's metrics implementation (Prometheus), when /metrics is served. */
  libp2pMetrics?: NodeInit['metrics'];
}

/** What the mesh uses from the rest of the agent. */
export interface MeshComponents {
  db: Db;
  logger: Logger;
}

/** The parts of the mesh that exist once the libp2p node does (built by `start()`). */
interface Running {
  node: PlexusLibp2p;
  directory: PeerDirectory;
  connector: Connector;
  gossip: TelemetryGossip;
  sync: MembershipSync;
  nat: NatTraversal;
}

/** The mesh service. */
export class Mesh implements Startable {
  /** The admitted set (members, revocations, operator grants). */
  readonly membership: Membership;
  /** Join tokens created on this node. */
  readonly tokens: TokenLedger;
  /** The latest telemetry record of every member, and this node's own. */
  readonly telemetry: TelemetryBus;
  /** `node.status`, `mesh.peers`, `mesh.ping`, tokens and revocation: the composition root registers them. */
  readonly actions: ActionDef[];
  readonly #init: MeshInit;
  readonly #logger: Logger;
  /** The swarm key new mesh connections use (it changes on rotation; open ones keep theirs). */
  readonly swarmKey: SwarmKeySwitch;
  /** Swarm-key rotations: made here (admin), fetched from members or from a join door. */
  readonly rotation: SwarmRotation;
  readonly #door: JoinDoor;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #startedAt = Date.now();
  #running: Running | undefined;
  #stopping = false;

  /** Builds the mesh over the open store; the libp2p node is created by `start()`. */
  constructor(init: MeshInit, components: MeshComponents) {
    this.#init = init;
    this.#logger = components.logger;
    this.membership = new Membership(components.db, init.keys.adminPublicKey);
    this.tokens = new TokenLedger(components.db, this.membership);
    this.telemetry = new TelemetryBus(components.logger);
    this.swarmKey = new SwarmKeySwitch(init.keys.psk, init.keys.swarmEpoch);
    const { swarmKey, membership } = this;
    this.rotation = new SwarmRotation(init, { ...components, swarmKey, membership });
    this.#door = new JoinDoor(
      {
        nodeKey: init.keys.identity.protobuf,
        listen: doorListenAddrs(init.config.mesh.door, init.config.mesh.listen),
      },
      {
        membership: this.membership,
        adminPublicKey: init.keys.adminPublicKey,
        logger: components.logger,
        publishAdmission: (adm) => this.#running?.sync.publish({ type: 'admission', admission: adm }),
        swarmKey: (peer) => this.rotation.grant(peer),
        addressHints: () => addressHints(this.#running?.node, this.membership),
      },
    );
    this.actions = [...meshActions(this, init.keys), ...rotationActions(this)];
  }

  /** This node's peer ID. */
  get peerId(): string {
    return this.libp2p.peerId.toString();
  }

  /** This node's name. */
  get name(): string {
    return this.#init.config.node.name;
  }

  /** The network id. */
  get networkId(): string {
    return this.#init.keys.network.networkId;
  }

  /** The running libp2p node (for subsystems that open streams: tunnels, commands). */
  get libp2p(): PlexusLibp2p {
    return this.#started().node;
  }

  /** Telemetry interval in ms. */
  get intervalMs(): number {
    return this.#init.config.telemetry.intervalS * 1000;
  }

  /** Starts libp2p, the protocols, and the background loops. */
  async start(): Promise<void> {
    const { keys, config, version } = this.#init;
    const { membership, telemetry } = this;
    const logger = this.#logger;
    const node = await createNode({
      nodeKey: keys.identity.protobuf,
      protector: this.swarmKey.protector(),
      listen: config.mesh.listen,
      announce: config.mesh.announce,
      relayServer: config.mesh.relay,
      // Reservations are held by keepReservations (reservations.ts), not by '/p2p-circuit'
      // listen addresses, whose relay discovery freezes the agent while the DHT is empty.
      reservations: 0,
      gater: createGater(membership),
      agentVersion: `plexus/${version}`,
      metrics: this.#init.libp2pMetrics,
    });
    const self = node.peerId.toString();
    const directory = new PeerDirectory({ node, membership, telemetry, intervalMs: this.intervalMs });
    const connector = new Connector({
      node,
      membership,
      bootstrap: keys.network.bootstrap,
      logger,
    });
    const gossip = new TelemetryGossip({
      node,
      membership,
      telemetry,
      directory,
      connector,
      name: this.name,
      version,
      startedAt: this.#startedAt,
      doorAddrs: () => this.#door.addrs(),
    });
    const sync = new MembershipSync({
      node,
      membership,
      telemetry,
      logger,
      acceptTelemetry: (from, data) => gossip.accept(from, data),
    });
    const nat = new NatTraversal(config.mesh, {
      node,
      membership,
      logger,
      telemetry,
      nameOf: (id) => membership.get(id)?.name ?? id,
      punched: (conn) => directory.punched(conn),
      announce: () => this.publishTelemetry(),
    });
    const running: Running = { node, directory, connector, gossip, sync, nat };
    this.#running = running;

    await node.handle(MEMBERS_PROTOCOL, (stream, conn) => sync.serve(stream, conn), {
      runOnLimitedConnection: true,
    });
    await node.handle(MEMBERS_DIGEST_PROTOCOL, (stream, conn) => sync.serveDigest(stream, conn), {
      runOnLimitedConnection: true,
    });

    membership.on('member', (m) => {
      logger.info({ peer: m.peerId, name: m.name }, 'member added');
      void connector.connectAll();
    });
    membership.on('revoked', (r) => {
      if (r.kind !== 'node') return;
      logger.warn({ peer: r.subject }, 'node revoked; dropping its connections');
      telemetry.forget(r.subject);
      if (r.subject === self) {
        logger.error('this node was revoked by the admin; it can no longer talk to the mesh');
        return;
      }
      void node.hangUp(peerIdFromString(r.subject)).catch(() => {});
    });
    membership.on('lost', (m) => {
      telemetry.forget(m.peerId);
      if (m.peerId !== self) void node.hangUp(peerIdFromString(m.peerId)).catch(() => {});
    });
    membership.on('conflict', (c) => {
      logger.warn({ peer: c.peerId, name: c.name, token: c.tokenId, code: c.code }, c.message);
    });

    node.addEventListener('connection:open', (evt) => this.#onConnection(running, evt.detail));
    node.addEventListener('peer:identify', (evt) => {
      const id = evt.detail.peerId.toString();
      if (membership.isMember(id)) {
        membership.touch(id, { addrs: evt.detail.listenAddrs.map((a) => a.toString()) });
      }
    });

    await node.start();
    await nat.start();
    await this.#door.start();
    await this.rotation.start({ node, telemetry, connector, announce: () => this.publishTelemetry() });
    await connector.seedPeerStore();

    const pubsub = node.services.pubsub;
    pubsub.topicValidators.set(MEMBERS_TOPIC, (_peer, msg) => sync.validate(msg.data));
    pubsub.topicValidators.set(TELEMETRY_TOPIC, (peer, msg) => gossip.validate(peer, msg));
    pubsub.subscribe(MEMBERS_TOPIC);
    pubsub.subscribe(TELEMETRY_TOPIC);
    pubsub.addEventListener('subscription-change', (evt) => gossip.onSubscriptionChange(evt.detail));

    this.#every(CONNECT_INTERVAL_MS, () => connector.connectAll());
    // gossipsub never revisits a peer's outbound stream; a dead one silences that peer for good.
    this.#every(CONNECT_INTERVAL_MS, () => repairGossipStreams(node, logger));
    this.#every(this.intervalMs, () => this.publishTelemetry());
    this.#every(SYNC_INTERVAL_MS, () => sync.syncRandom());
    // No ping loop of our own: libp2p's connection monitor pings every connection (it aborts one
    // that stops answering) and keeps its RTT; a second loop doubled the O(members) ping streams.
    // Relay reservations, held while this node is behind NAT (found out by dial-backs, or said).
    this.#every(CONNECT_INTERVAL_MS, () => nat.tick());
    void connector.connectAll();
    logger.info(
      { peerId: self, addrs: node.getMultiaddrs().map((a) => a.toString()), network: keys.network.networkId },
      'mesh started',
    );
  }

  /** Stops the loops and libp2p. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const t of this.#timers) clearInterval(t);
    const running = this.#running;
    await this.#door.stop();
    this.rotation.stop();
    if (!running) return;
    running.gossip.stop();
    running.nat.stop();
    running.directory.saveLastSeen();
    running.connector.stop();
    await running.node.stop();
  }

  #started(): Running {
    if (!this.#running) throw new Error('mesh not started');
    return this.#running;
  }

  #every(ms: number, fn: () => unknown): void {
    const t = setInterval(() => {
      if (this.#stopping) return;
      Promise.resolve()
        .then(fn)
        .catch((err) => this.#logger.warn({ err }, 'background task failed'));
    }, ms);
    t.unref();
    this.#timers.push(t);
  }

  /** A member's connection (the gater lets no other through): note it, swap snapshots, measure the RTT. */
  #onConnection({ directory, connector, sync }: Running, conn: Connection): void {
    const id = conn.remotePeer.toString();
    if (!this.membership.isMember(id)) return;
    directory.seen(id);
    connector.connected(id);
    // A second connection to the same member (a dial-back, a punched path beside a relayed one)
    // brings nothing new to swap or measure.
    if (this.libp2p.getConnections(conn.remotePeer).length > 1) return;
    void sync
      .syncWith(conn.remotePeer)
      .then(() => this.membership.inSync())
      .catch(() => {});
    directory.measureRtt(conn.remotePeer);
  }

  // ---- what the CLI and the other subsystems ask -------------------------------------------

  /** Publishes this node's record now (also called when an app changes state). */
  async publishTelemetry(): Promise<void> {
    if (this.#stopping) return;
    await this.#running?.gossip.publish();
  }

  /** Resolves a node name (or a peer ID) to a live member. */
  resolve(nameOrPeer: string): Member {
    return this.membership.resolve(nameOrPeer);
  }

  /** How we are connected to a peer right now. */
  connectionTo(peerId: string): ConnectionPath {
    return this.#running?.directory.connectionTo(peerId) ?? 'none';
  }

  /** Every other live member with its state. */
  peers(): PeerView[] {
    return this.#started().directory.peers();
  }

  /** Pings a node `count` times, reporting each RTT. */
  ping(
    nameOrPeer: string,
    count: number,
    onReply: (ms: number, seq: number) => Promise<void>,
    signal: AbortSignal,
  ): Promise<PingResult> {
    return this.#started().directory.ping(nameOrPeer, count, onReply, signal);
  }

  /** Pings a node every second until the path is direct (punching if relayed), or `timeoutMs`. */
  pingUntilDirect(
    nameOrPeer: string,
    timeoutMs: number,
    onReply: (p: PathPing) => Promise<void>,
    signal: AbortSignal,
  ) {
    const { node, directory, nat } = this.#started();
    const c = { node, membership: this.membership, connectionTo: (id: string) => directory.connectionTo(id) };
    return pingUntilDirect({ ...c, punch: (id) => nat.punch(id) }, nameOrPeer, timeoutMs, onReply, signal);
  }

  /** Status of this node. */
  status(): NodeStatus {
    const peers = this.peers();
    return nodeStatus(
      {
        name: this.name,
        peerId: this.peerId,
        networkId: this.networkId,
        version: this.#init.version,
        startedAt: this.#startedAt,
        addrs: this.libp2p.getMultiaddrs().map((a) => a.toString()),
        door: this.#door.addrs(),
        admin: Boolean(this.#init.keys.admin),
        reachability: this.#started().nat.view(),
      },
      peers,
    );
  }

  /** Join doors for a token: ours first, then those of a few other members that are online. */
  doorAddrs(): string[] {
    const own = this.#door.addrs();
    const others = this.#running?.gossip.doorsOfPeers() ?? [];
    return [...own, ...others].slice(0, 16);
  }

  /** Recently refused or dropped claims to a name or a token use, for `plexus peers`. */
  conflicts(): ReturnType<Membership['conflicts']> {
    return this.membership.conflicts();
  }

  /** Spreads a signed revocation (already merged locally). */
  publishRevocation(blob: unknown): void {
    this.#running?.sync.publish({ type: 'revocation', blob });
  }

  /** Spreads an admin-signed operator grant (already merged locally). */
  publishGrant(blob: unknown): void {
    this.#running?.sync.publish({ type: 'grant', blob });
  }
}
