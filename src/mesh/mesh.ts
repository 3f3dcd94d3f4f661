/**
 * The mesh service: owns the libp2p node and everything that keeps the private network
 * together (admission, membership gossip and sync, expulsion of strangers, connections to every
 * member, presence), and answers the questions the CLI asks (peers, ping, tokens, revoke).
 */

import { TopicValidatorResult } from '@libp2p/gossipsub';
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { Config } from '../config/index.ts';
import type { Logger } from '../logging/index.ts';
import type { Db } from '../store/index.ts';
import { admitHandler } from './admission.ts';
import {
  ADMISSION_GRACE_MS,
  ADMIT_PROTOCOL,
  CONNECT_INTERVAL_MS,
  LOOKUP_DELAY_MS,
  LOOKUP_INTERVAL_MS,
  MAX_REDIAL_BACKOFF_MS,
  MAX_SNAPSHOT_BYTES,
  MEMBERS_PROTOCOL,
  MEMBERS_TOPIC,
  NEWCOMER_MS,
  PROTOCOL_TIMEOUT_MS,
  SYNC_INTERVAL_MS,
  TELEMETRY_TOPIC,
} from './constants.ts';
import { PeerUnreachableError, UnknownNodeError } from './errors.ts';
import { createGater, Expulsions } from './gater.ts';
import { repairGossipStreams } from './gossip-repair.ts';
import { jsonChannel } from './json-stream.ts';
import type { NodeKeys } from './keys.ts';
import { type Member, Membership } from './membership.ts';
import { createNode, type NodeInit, type PlexusLibp2p } from './node.ts';
import type { Admission } from './records.ts';
import { keepReservations } from './reservations.ts';
import { decodeTelemetry, type PeerState, stateOf, TelemetryBus, type TelemetryRecord } from './telemetry.ts';

/** Options of the mesh. */
export interface MeshInit {
  keys: NodeKeys;
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

/** One row of `plexus peers`. */
export interface PeerView {
  name: string;
  peerId: string;
  state: PeerState;
  addrs: string[];
  connection: 'direct' | 'relayed' | 'none';
  rttMs: number | null;
  lastSeen: number | null;
  tags: string[];
  telemetry?: TelemetryRecord;
}

interface DialState {
  failures: number;
  nextAt: number;
}

/** The mesh service. */
export class Mesh {
  readonly membership: Membership;
  readonly telemetry: TelemetryBus;
  readonly #init: MeshInit;
  readonly #logger: Logger;
  readonly #expulsions = new Expulsions();
  readonly #lastSeen = new Map<string, number>();
  readonly #rtt = new Map<string, number>();
  readonly #dials = new Map<string, DialState>();
  /** When each member with no known address may next be looked up in the DHT. */
  readonly #lookups = new Map<string, number>();
  readonly #graceTimers = new Map<string, NodeJS.Timeout>();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #startedAt = Date.now();
  #node: PlexusLibp2p | undefined;
  #stopping = false;
  #publishTimer: NodeJS.Timeout | undefined;

  constructor(init: MeshInit, components: MeshComponents) {
    this.#init = init;
    this.#logger = components.logger;
    this.membership = new Membership(components.db, init.keys.adminPublicKey);
    this.telemetry = new TelemetryBus(components.logger);
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
    if (!this.#node) throw new Error('mesh not started');
    return this.#node;
  }

  /** Telemetry interval in ms. */
  get intervalMs(): number {
    return this.#init.config.telemetry.intervalS * 1000;
  }

  /** Starts libp2p, the protocols, and the background loops. */
  async start(): Promise<void> {
    const { keys, config, version } = this.#init;
    const node = await createNode({
      nodeKey: keys.identity.protobuf,
      swarmKeyFile: keys.swarmKeyFile,
      listen: config.mesh.listen,
      announce: config.mesh.announce,
      relayServer: config.mesh.relay,
      // Reservations are held by keepReservations (reservations.ts), not by '/p2p-circuit'
      // listen addresses, whose relay discovery freezes the agent while the DHT is empty.
      reservations: 0,
      gater: createGater(this.membership, this.#expulsions),
      agentVersion: `plexus/${version}`,
      metrics: this.#init.libp2pMetrics,
    });
    this.#node = node;
    const self = node.peerId.toString();

    await node.handle(
      ADMIT_PROTOCOL,
      admitHandler({
        membership: this.membership,
        self: { peerId: self, signer: keys.identity.signer },
        networkId: keys.network.networkId,
        adminPublicKey: keys.adminPublicKey,
        logger: this.#logger,
        publishAdmission: (adm) => this.#publishMembers({ type: 'admission', admission: adm }),
        selfAddrs: () => node.getMultiaddrs().map((a) => a.toString()),
      }),
      { runOnLimitedConnection: true },
    );
    await node.handle(MEMBERS_PROTOCOL, (stream, conn) => this.#serveSync(stream, conn), {
      runOnLimitedConnection: true,
    });

    this.membership.on('member', (m) => {
      this.#expulsions.forgive(m.peerId);
      this.#logger.info({ peer: m.peerId, name: m.name }, 'member added');
      void this.#connectAll();
    });
    this.membership.on('revoked', (r) => {
      if (r.kind !== 'node') return;
      this.#logger.warn({ peer: r.subject }, 'node revoked; dropping its connections');
      this.telemetry.forget(r.subject);
      if (r.subject === self) {
        this.#logger.error('this node was revoked by the admin; it can no longer talk to the mesh');
        return;
      }
      void node.hangUp(peerIdFromString(r.subject)).catch(() => {});
    });

    node.addEventListener('connection:open', (evt) => this.#onConnection(evt.detail));
    node.addEventListener('peer:identify', (evt) => {
      const id = evt.detail.peerId.toString();
      if (this.membership.isMember(id)) {
        this.membership.touch(id, { addrs: evt.detail.listenAddrs.map((a) => a.toString()) });
      }
    });

    // Seed the peer store with what we remember, so a restarted node reaches any known peer.
    await node.start();
    for (const m of this.membership.list()) {
      if (m.peerId === self || m.addrs.length === 0) continue;
      try {
        await node.peerStore.merge(peerIdFromString(m.peerId), {
          multiaddrs: m.addrs.map((a) => multiaddr(a)),
        });
      } catch (err) {
        this.#logger.debug({ err, peer: m.peerId }, 'ignoring stored addresses');
      }
    }

    const pubsub = node.services.pubsub;
    pubsub.topicValidators.set(MEMBERS_TOPIC, (_peer, msg) => this.#validateMembers(msg.data));
    pubsub.topicValidators.set(TELEMETRY_TOPIC, (peer, msg) => this.#validateTelemetry(peer, msg));
    pubsub.subscribe(MEMBERS_TOPIC);
    pubsub.subscribe(TELEMETRY_TOPIC);
    // A node that just started publishes its first record as soon as members subscribe, instead
    // of making them wait up to an interval: that is what makes a joining or restarted node
    // 'online' everywhere fast. Established nodes do not answer every subscription with a flood
    // to the whole mesh (a join in a 20-node mesh cost ~400 gossip messages): the newcomer gets
    // their latest records in the membership sync that runs on every new connection.
    pubsub.addEventListener('subscription-change', (evt) => {
      const { peerId, subscriptions } = evt.detail;
      if (!this.membership.isMember(peerId.toString())) return;
      if (Date.now() - this.#startedAt > NEWCOMER_MS) return;
      if (subscriptions.some((s) => s.topic === TELEMETRY_TOPIC && s.subscribe)) this.#publishSoon();
    });

    this.#every(CONNECT_INTERVAL_MS, () => this.#connectAll());
    // gossipsub never revisits a peer's outbound stream; a dead one silences that peer for good.
    this.#every(CONNECT_INTERVAL_MS, () => repairGossipStreams(node, this.#logger));
    this.#every(this.intervalMs, () => this.publishTelemetry());
    this.#every(SYNC_INTERVAL_MS, () => this.#syncRandom());
    // No ping loop of our own: libp2p's connection monitor already pings every connection (every
    // CONNECTION_PING_MS; it aborts one that stops answering) and keeps the RTT on the
    // connection. A second loop doubled the ping streams, which are O(members) per agent.
    if (config.mesh.reservations > 0) {
      this.#every(CONNECT_INTERVAL_MS, () =>
        keepReservations(node, this.membership, config.mesh.reservations, this.#logger),
      );
    }
    void this.#connectAll();
    this.#logger.info(
      { peerId: self, addrs: node.getMultiaddrs().map((a) => a.toString()), network: keys.network.networkId },
      'mesh started',
    );
  }

  /** Stops the loops and libp2p. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const t of this.#timers) clearInterval(t);
    // Remember when we last heard from each peer, for `peers` right after a restart.
    for (const [peerId, at] of this.#lastSeen) this.membership.touch(peerId, { lastSeen: at });
    for (const t of this.#graceTimers.values()) clearTimeout(t);
    await this.#node?.stop();
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

  #onConnection(conn: Connection): void {
    const id = conn.remotePeer.toString();
    if (this.membership.isMember(id)) {
      this.#lastSeen.set(id, Date.now());
      this.#dials.delete(id);
      this.#lookups.delete(id);
      void this.#syncWith(conn.remotePeer).catch(() => {});
      // libp2p's connection monitor first measures a connection's RTT one ping interval
      // (30 s) after it opens; one ping now lets `peers` show it at once.
      void this.libp2p.services.ping
        .ping(conn.remotePeer, { signal: AbortSignal.timeout(5000) })
        .then((ms) => this.#rtt.set(id, ms))
        .catch(() => {});
      return;
    }
    if (this.#graceTimers.has(id)) return;
    // A stranger holding the swarm key: it may run admission, then must be a member or leave.
    const t = setTimeout(() => {
      this.#graceTimers.delete(id);
      if (this.membership.isMember(id) || this.#stopping) return;
      this.#expulsions.expel(id);
      this.#logger.warn({ peer: id }, 'expelling a peer that did not get admitted in time');
      void this.#node?.hangUp(conn.remotePeer).catch(() => {});
    }, ADMISSION_GRACE_MS);
    t.unref();
    this.#graceTimers.set(id, t);
  }

  // ---- membership gossip and anti-entropy -------------------------------------------------

  #publishMembers(
    msg:
      | { type: 'admission'; admission: Admission }
      | { type: 'revocation'; blob: unknown }
      | { type: 'grant'; blob: unknown },
  ): void {
    const data = Buffer.from(JSON.stringify(msg));
    this.#node?.services.pubsub.publish(MEMBERS_TOPIC, data).catch((err) => {
      this.#logger.debug({ err }, 'membership publish failed (peers will sync)');
    });
  }

  #validateMembers(data: Uint8Array): TopicValidatorResult {
    if (data.byteLength > 16 * 1024) return TopicValidatorResult.Reject;
    let msg: { type?: string; admission?: unknown; blob?: unknown };
    try {
      msg = JSON.parse(Buffer.from(data).toString('utf8'));
    } catch {
      return TopicValidatorResult.Reject;
    }
    if (msg?.type === 'admission') {
      const r = this.membership.accept(msg.admission);
      return r === 'rejected'
        ? TopicValidatorResult.Reject
        : r === 'known'
          ? TopicValidatorResult.Ignore
          : TopicValidatorResult.Accept;
    }
    if (msg?.type === 'revocation') {
      return this.membership.revoke(msg.blob) ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore;
    }
    if (msg?.type === 'grant') {
      return this.membership.operators.accept(msg.blob)
        ? TopicValidatorResult.Accept
        : TopicValidatorResult.Ignore;
    }
    return TopicValidatorResult.Reject;
  }

  async #serveSync(stream: Stream, conn: Connection): Promise<void> {
    const id = conn.remotePeer.toString();
    const ch = jsonChannel(stream, MAX_SNAPSHOT_BYTES);
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    try {
      // The caller sends its own snapshot first: sync is symmetric in one round trip.
      const theirs = await ch.read(signal);
      // A peer we do not know yet may be a member whose admission has not reached us (it was
      // admitted elsewhere a moment ago): its snapshot carries the signed admission, so merge
      // first (every record is verified) and only then decide. Otherwise we would expel it.
      if (!this.membership.isMember(id)) this.membership.merge(theirs);
      if (!this.membership.isMember(id)) {
        stream.abort(new Error('not a member'));
        return;
      }
      await ch.write(this.#syncMessage(), signal);
      await stream.close({ signal });
      this.membership.merge(theirs);
      this.#syncedTelemetry(id, theirs);
    } catch (err) {
      this.#logger.debug({ err, peer: id }, 'sync request failed');
      stream.abort(err as Error);
    }
  }

  async #syncWith(peer: PeerId): Promise<void> {
    const node = this.#node;
    if (!node) return;
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    const stream = await node.dialProtocol(peer, MEMBERS_PROTOCOL, { signal, runOnLimitedConnection: true });
    const ch = jsonChannel(stream, MAX_SNAPSHOT_BYTES);
    try {
      await ch.write(this.#syncMessage(), signal);
      const theirs = await ch.read(signal);
      const added = this.membership.merge(theirs);
      this.#syncedTelemetry(peer.toString(), theirs);
      if (added) this.#logger.debug({ peer: peer.toString(), added }, 'sync learnt records');
      await stream.close({ signal });
    } catch (err) {
      stream.abort(err as Error);
      throw err;
    }
  }

  /** Our membership snapshot, with our latest telemetry record for a peer that has none yet. */
  #syncMessage(): object {
    const self = this.telemetry.self();
    return { ...this.membership.snapshot(), ...(self ? { telemetry: self } : {}) };
  }

  /** A telemetry record that came with a peer's sync message: checked like a gossiped one. */
  #syncedTelemetry(from: string, message: unknown): void {
    const record = (message as { telemetry?: unknown } | null)?.telemetry;
    if (record === undefined) return;
    this.#acceptTelemetry(from, Buffer.from(JSON.stringify(record)));
  }

  async #syncRandom(): Promise<void> {
    const peers = this.libp2p.getPeers().filter((p) => this.membership.isMember(p.toString()));
    if (peers.length === 0) return;
    await this.#syncWith(peers[Math.floor(Math.random() * peers.length)]).catch(() => {});
  }

  // ---- connections ---------------------------------------------------------------------------

  async #connectAll(): Promise<void> {
    const node = this.#node;
    if (!node || this.#stopping) return;
    const self = node.peerId.toString();
    const memberConnected = () => node.getPeers().some((p) => this.membership.isMember(p.toString()));
    if (!memberConnected()) {
      // Nothing connected yet (fresh start, or every known address stale): the bootstrap list
      // first. Dialling members by peer ID at the same time would join those dials and fail
      // them together, since a fresh node knows no addresses and has no DHT peers to ask.
      await Promise.all(
        this.#init.keys.network.bootstrap
          .filter((addr) => !addr.includes(`/p2p/${self}`))
          .map((addr) =>
            node
              .dial(multiaddr(addr), { signal: AbortSignal.timeout(5000) })
              .catch((err) => this.#logger.debug({ addr, err: err.message }, 'bootstrap dial failed')),
          ),
      );
    }
    const connected = new Set(node.getPeers().map((p) => p.toString()));
    const canRoute = memberConnected();
    const now = Date.now();
    const targets = this.membership.livePeerIds().filter((id) => id !== self && !connected.has(id));
    await Promise.all(
      targets.map(async (id) => {
        const st = this.#dials.get(id) ?? { failures: 0, nextAt: 0 };
        if (st.nextAt > now) return;
        const peer = peerIdFromString(id);
        // With no stored address, a dial is a DHT lookup. A member we know no address of is
        // usually one that was just admitted and is not up yet: it will dial us (admission gave
        // it everyone's addresses). Every node looking it up at once, and again on each pass,
        // flooded a 20-node mesh with DHT walks that starved the joining agent of CPU
        // (bench/join.ts: 8 s → 1.x s). So: look up late, and rarely.
        if (!(await this.#hasAddrs(peer)) && !(canRoute && this.#lookupDue(id, now))) return;
        try {
          await node.dial(peer, { signal: AbortSignal.timeout(5000) });
          this.#dials.delete(id);
        } catch {
          st.failures++;
          st.nextAt = Date.now() + Math.min(MAX_REDIAL_BACKOFF_MS, 500 * 2 ** Math.min(st.failures, 10));
          this.#dials.set(id, st);
        }
      }),
    );
  }

  /** True when a DHT lookup of a member with no known address may run now (see #connectAll). */
  #lookupDue(id: string, now: number): boolean {
    const at = this.#lookups.get(id);
    if (at === undefined) {
      this.#lookups.set(id, now + LOOKUP_DELAY_MS);
      return false;
    }
    if (at > now) return false;
    this.#lookups.set(id, now + LOOKUP_INTERVAL_MS);
    return true;
  }

  async #hasAddrs(peer: PeerId): Promise<boolean> {
    try {
      return (await this.libp2p.peerStore.get(peer)).addresses.length > 0;
    } catch {
      return false;
    }
  }

  // ---- telemetry / presence ------------------------------------------------------------------

  /** Publishes this node's record now (also called when an app changes state). */
  async publishTelemetry(): Promise<void> {
    const node = this.#node;
    if (!node || this.#stopping) return;
    const addrs = node.getMultiaddrs().map((a) => a.toString());
    const record = await this.telemetry.build({
      node: this.name,
      peerId: this.peerId,
      version: this.#init.version,
      uptimeS: Math.round((Date.now() - this.#startedAt) / 1000),
      addrs: addrs.slice(0, 32),
      reach: addrs.some((a) => !a.includes('/p2p-circuit')) ? 'direct' : 'relayed',
    });
    await node.services.pubsub.publish(TELEMETRY_TOPIC, Buffer.from(JSON.stringify(record))).catch(() => {});
  }

  #validateTelemetry(
    peer: PeerId,
    msg: { data: Uint8Array; type?: string; from?: PeerId },
  ): TopicValidatorResult {
    // `from` is the original publisher (signed by gossipsub's StrictSign); `peer` just forwarded.
    return this.#acceptTelemetry((msg.from ?? peer).toString(), msg.data);
  }

  /** Checks and keeps a record published by `from` (a member, and the record's own peer). */
  #acceptTelemetry(from: string, data: Uint8Array): TopicValidatorResult {
    if (!this.membership.isMember(from)) {
      this.telemetry.reject(from, 'not-member');
      return TopicValidatorResult.Reject;
    }
    const record = decodeTelemetry(data);
    const member = this.membership.get(from);
    if (!record || record.peerId !== from || (member && member.name !== record.node)) {
      this.telemetry.reject(from, record ? 'forged' : 'malformed');
      return TopicValidatorResult.Reject;
    }
    if (!this.telemetry.accept(record)) return TopicValidatorResult.Ignore;
    this.#lastSeen.set(from, Date.now());
    if (record.addrs?.length && this.connectionTo(from) === 'none') void this.#learnAddrs(from, record.addrs);
    return TopicValidatorResult.Accept;
  }

  /** A member we are not connected to told us where it listens: remember, and dial it. */
  async #learnAddrs(peerId: string, addrs: string[]): Promise<void> {
    try {
      const peer = peerIdFromString(peerId);
      await this.libp2p.peerStore.merge(peer, { multiaddrs: addrs.map((a) => multiaddr(a)) });
      this.membership.touch(peerId, { addrs });
      await this.libp2p.dial(peer, { signal: AbortSignal.timeout(5000) });
    } catch (err) {
      this.#logger.debug({ err, peer: peerId }, 'could not use advertised addresses');
    }
  }

  /** Publishes our record shortly, coalescing bursts (several peers subscribing at once). */
  #publishSoon(): void {
    if (this.#publishTimer) return;
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      void this.publishTelemetry().catch(() => {});
    }, 100);
    this.#publishTimer.unref();
  }

  // ---- queries -------------------------------------------------------------------------------

  /** Resolves a node name (or a peer ID) to a live member. */
  resolve(nameOrPeer: string): Member {
    const m = this.membership.byName(nameOrPeer) ?? this.membership.get(nameOrPeer);
    if (!m || m.revokedAt) throw new UnknownNodeError(nameOrPeer);
    return m;
  }

  /** How we are connected to a peer right now. */
  connectionTo(peerId: string): 'direct' | 'relayed' | 'none' {
    const conns = this.#node?.getConnections(peerIdFromString(peerId)) ?? [];
    if (conns.length === 0) return 'none';
    return conns.some((c) => !c.remoteAddr.toString().includes('/p2p-circuit')) ? 'direct' : 'relayed';
  }

  /** The last RTT to a peer: from libp2p's connection monitor, else from `plexus ping`. */
  #rttOf(peerId: string): number | null {
    const conns = this.#node?.getConnections(peerIdFromString(peerId)) ?? [];
    const rtt = conns.find((c) => c.rtt !== undefined)?.rtt;
    if (rtt !== undefined) return Math.round(rtt * 100) / 100;
    return conns.length > 0 ? (this.#rtt.get(peerId) ?? null) : null;
  }

  /** Every other live member with its state. */
  peers(): PeerView[] {
    const self = this.peerId;
    const now = Date.now();
    return this.membership
      .list()
      .filter((m) => m.peerId !== self)
      .map((m) => {
        const connection = this.connectionTo(m.peerId);
        const lastSeen = this.#lastSeen.get(m.peerId) ?? null;
        const telemetry = this.telemetry.latest(m.peerId);
        return {
          name: m.name,
          peerId: m.peerId,
          state: stateOf(lastSeen, this.intervalMs, now),
          // Listen addresses (what others can dial), freshest first: the peer's own record,
          // else what identify told us. A connection's remote address may be an ephemeral port.
          addrs: telemetry?.addrs?.length ? telemetry.addrs : m.addrs,
          connection,
          rttMs: this.#rttOf(m.peerId),
          lastSeen: lastSeen ?? m.lastSeen,
          tags: m.tags,
          telemetry,
        };
      });
  }

  /** Pings a node `count` times, reporting each RTT. */
  async ping(
    nameOrPeer: string,
    count: number,
    onReply: (ms: number, seq: number) => Promise<void>,
    signal: AbortSignal,
  ) {
    const m = this.resolve(nameOrPeer);
    if (m.peerId === this.peerId) throw new PeerUnreachableError(m.name, 'that is this node');
    const results: number[] = [];
    let lost = 0;
    for (let i = 0; i < count && !signal.aborted; i++) {
      try {
        const ms = await this.libp2p.services.ping.ping(peerIdFromString(m.peerId), {
          signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
        });
        results.push(ms);
        this.#rtt.set(m.peerId, ms);
        await onReply(ms, i + 1);
      } catch (err) {
        lost++;
        if (results.length === 0 && i === count - 1)
          throw new PeerUnreachableError(m.name, (err as Error).message);
      }
      if (i < count - 1) await new Promise((r) => setTimeout(r, 200));
    }
    return {
      name: m.name,
      peerId: m.peerId,
      sent: count,
      received: results.length,
      lost,
      rttMs: results,
      connection: this.connectionTo(m.peerId),
    };
  }

  /** Status of this node. */
  status() {
    const peers = this.peers();
    const counts = { online: 0, suspect: 0, down: 0 };
    for (const p of peers) counts[p.state]++;
    return {
      name: this.name,
      peerId: this.peerId,
      networkId: this.networkId,
      version: this.#init.version,
      uptimeS: Math.round((Date.now() - this.#startedAt) / 1000),
      addrs: this.libp2p.getMultiaddrs().map((a) => a.toString()),
      admin: Boolean(this.#init.keys.admin),
      peers: { total: peers.length, ...counts },
      // The agent's own footprint, so operators can see what it costs them.
      agent: {
        pid: process.pid,
        rssMb: Math.round(process.memoryUsage.rss() / 1048576),
        heapUsedMb: Math.round(process.memoryUsage().heapUsed / 1048576),
      },
    };
  }

  /** Our dialable addresses for a join token: ours first, then a few other members'. */
  bootstrapAddrs(): string[] {
    const own = this.libp2p.getMultiaddrs().map((a) => a.toString());
    const others = this.peers()
      .filter((p) => p.state === 'online' && p.connection === 'direct')
      .flatMap((p) =>
        p.addrs
          .filter((a) => !a.includes('/p2p-circuit'))
          .map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${p.peerId}`)),
      )
      .slice(0, 8);
    return [...own, ...others].slice(0, 32);
  }

  /** Spreads a signed revocation (already merged locally). */
  publishRevocation(blob: unknown): void {
    this.#publishMembers({ type: 'revocation', blob });
  }

  /** Spreads an admin-signed operator grant (already merged locally). */
  publishGrant(blob: unknown): void {
    this.#publishMembers({ type: 'grant', blob });
  }
}
