/**
 * Builds the libp2p node: TCP + pnet + Noise + Yamux, identify, ping, Kad-DHT under our prefix
 * in server mode keeping private addresses, gossipsub, circuit relay (server for members when
 * enabled; transport everywhere) and DCUtR. No AutoNAT: it ignores private addresses, which is
 * all a plexus mesh has; dial-backs of our own say whether a node is behind NAT (dialback.ts).
 */
import { createHash } from 'node:crypto';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { dcutr } from '@libp2p/dcutr';
import { gossipsub } from '@libp2p/gossipsub';
import { identify, identifyPush } from '@libp2p/identify';
import type { ConnectionGater, ConnectionProtector } from '@libp2p/interface';
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2pOptions } from 'libp2p';
import {
  CONNECTION_PING_MS,
  DHT_PROTOCOL,
  MAX_TELEMETRY_BYTES,
  YAMUX_KEEPALIVE_MS,
  YAMUX_STREAM_OPTIONS,
} from './constants.ts';

/** Options for the libp2p node. */
export interface NodeInit {
  /** node.key contents (libp2p protobuf). */
  nodeKey: Uint8Array;
  /** pnet with the swarm key (swarm-key.ts: it can change while connections stay open). */
  protector: () => ConnectionProtector;
  listen: string[];
  announce: string[];
  /** Serve circuit-relay-v2 (to members only, via the gater). */
  relayServer: boolean;
  /** How many relay reservations to hold (0 when directly dialable). */
  reservations: number;
  gater: ConnectionGater;
  /** Agent version string for identify. */
  agentVersion: string;
  /** libp2p metrics (e.g. `prometheusMetrics()`), exported on /metrics. */
  metrics?: Libp2pOptions['metrics'];
}

/** A cheap id of a received gossip message, over everything its signature covers and the signature. */
function fastMessageId(msg: {
  from?: Uint8Array;
  seqno?: Uint8Array;
  data?: Uint8Array;
  topic: string;
  signature?: Uint8Array;
  key?: Uint8Array;
}): string {
  const h = createHash('sha256').update(msg.topic);
  const len = Buffer.alloc(4);
  // Each field length-prefixed (an absent one as 0xffffffff), so no two messages share an id.
  for (const part of [msg.from, msg.seqno, msg.data, msg.signature, msg.key]) {
    len.writeUInt32BE(part ? part.byteLength : 0xffff_ffff);
    h.update(len);
    if (part) h.update(part);
  }
  return h.digest('base64');
}

/** Creates (without starting) the libp2p node. */
export async function createNode(init: NodeInit) {
  const privateKey = privateKeyFromProtobuf(init.nodeKey);
  const listen = [...init.listen];
  for (let i = 0; i < init.reservations; i++) listen.push('/p2p-circuit');
  const relay = init.relayServer
    ? {
        relay: circuitRelayServer({
          reservations: {
            // Members relay for each other without the default 2 min / 128 KiB caps, which
            // would cut tunnels and command streams to nodes behind NAT.
            applyDefaultLimit: false,
            maxReservations: 128,
          },
        }),
      }
    : {};
  return createLibp2p({
    start: false,
    privateKey,
    addresses: { listen, announce: init.announce },
    transports: [tcp(), circuitRelayTransport()],
    connectionProtector: init.protector,
    connectionEncrypters: [noise()],
    streamMuxers: [
      yamux({
        // Windows and the read-buffer cap above them: constants.ts says why.
        streamOptions: YAMUX_STREAM_OPTIONS,
        // Yamux pings each connection at once (the RTT its window tuning uses) and then every
        // 30 s by default; the connection monitor already checks liveness every 30 s, so its
        // own pings only need to keep that RTT fresh. ~7 % of an idle agent's busy time in a
        // 25-agent mesh went to the two kinds of ping.
        keepAliveInterval: YAMUX_KEEPALIVE_MS,
      }),
    ],
    connectionGater: init.gater,
    metrics: init.metrics,
    // The monitor opens a ping stream on every connection to measure its RTT (`peers` shows it)
    // and to drop dead ones. Every 10 s (the default) with every member connected, those stream
    // set-ups and tear-downs were a large share of an idle agent's frames in a 25-agent mesh;
    // every 30 s still refreshes the RTT twice a minute, and telemetry marks a silent peer
    // suspect after 3 intervals anyway.
    connectionMonitor: { pingInterval: CONNECTION_PING_MS },
    connectionManager: {
      // Every member keeps a connection to every other; allow comfortably more than a fleet.
      maxConnections: 1000,
      // libp2p's default allows 5 inbound connections per second per IP. Many members can share
      // one address (several agents on a host, a fleet behind one NAT) and all redial at once
      // after a restart; strangers are already stopped by the swarm key.
      inboundConnectionThreshold: 200,
      maxIncomingPendingConnections: 100,
    },
    nodeInfo: { userAgent: init.agentVersion },
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping(),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        // Mesh members live on private networks; the default mapper would drop those addresses.
        peerInfoMapper: passthroughMapper,
        allowQueryWithZeroPeers: true,
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        // Publish our own messages to every subscribed peer, not just the mesh: with a full
        // mesh of members this makes telemetry arrive in one hop.
        floodPublish: true,
        // A small forwarding mesh: flood publishing already hands every record to every member
        // in one hop, so the mesh only covers a missing link. Its forwards and IDONTWANTs are
        // O(mesh degree) per message at every node, almost all duplicates here: degree 2
        // instead of 6 (25 agents idle: 2.4 -> 2.1 % CPU each with degree 3 -> 2, p99 unchanged).
        D: 2,
        Dlo: 2,
        Dhi: 4,
        Dlazy: 3,
        Dout: 1,
        Dscore: 1,
        // Mesh upkeep every 5 s instead of 1 s: with flood publishing and every member connected,
        // delivery does not wait for it, and an idle 5-node mesh used ~25 % less CPU (bench/join.ts).
        heartbeatInterval: 5000,
        // Every peer here passed admission (the gater refuses others), so gossipsub's penalty for
        // many peers behind one IP only hurts us: past 10 such peers their score drops below the
        // graylist and every message they send is ignored. That silenced telemetry for all nodes
        // of a 15-agent test on loopback, and would for nodes reached through one relay or
        // sharing a NAT address (bench/telemetry-gossip.ts).
        scoreParams: { IPColocationFactorWeight: 0 },
        // Without it gossipsub checks a message's signature before it looks it up in its seen
        // cache, so every duplicate (flood publishing plus mesh forwarding deliver each record
        // several times) cost an Ed25519 verification: 16 % of an idle agent's CPU in a
        // 20-node mesh. The id covers the signature and data, so a forged copy cannot shadow
        // the real message.
        fastMsgIdFn: fastMessageId,
        // IDONTWANT (gossipsub 1.2) tells mesh peers not to forward a message we already hold.
        // It pays for megabyte blocks; our records are a few hundred bytes to a few KiB, sent by
        // flood publishing to every member in one hop, so each IDONTWANT costs about as much as
        // the duplicate it might spare, and usually arrives after it. With the default threshold
        // (512 bytes) a telemetry record that grew past it (the join door's address) sent ~3
        // more RPCs per record at every node: +0.2 points of idle CPU per agent (bench/idle.ts).
        idontwantMinDataSize: MAX_TELEMETRY_BYTES + 1,
      }),
      dcutr: dcutr(),
      ...relay,
    },
  });
}

/**
 * A node for `plexus join` to ask a join door for admission: TCP, Noise and Yamux, no swarm
 * key (the joiner has none yet) and no services. It shares the joining node's identity, which
 * the door checks against the member record. It never speaks to the mesh port.
 */
export async function createJoinNode(init: Pick<NodeInit, 'nodeKey' | 'agentVersion'>) {
  return createLibp2p({
    start: false,
    privateKey: privateKeyFromProtobuf(init.nodeKey),
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: async () => false },
    nodeInfo: { userAgent: init.agentVersion },
    services: {},
  });
}

/**
 * The join door (door.ts): TCP, Noise and Yamux without the swarm key, and no services at all:
 * no identify, ping, DHT or gossip, so a stranger learns nothing here but admission refusals.
 * Small connection limits; per-address rates are the door's gater's.
 */
export async function createDoorNode(init: Pick<NodeInit, 'nodeKey' | 'listen' | 'gater'>) {
  return createLibp2p({
    start: false,
    privateKey: privateKeyFromProtobuf(init.nodeKey),
    addresses: { listen: init.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: init.gater,
    connectionManager: {
      maxConnections: 64,
      maxIncomingPendingConnections: 16,
      inboundConnectionThreshold: 5,
      inboundUpgradeTimeout: 5000,
    },
    // No identify: the door's protocols are nobody's business.
    nodeInfo: { userAgent: 'plexus-door' },
    services: {},
  });
}

/** The libp2p node type. */
export type PlexusLibp2p = Awaited<ReturnType<typeof createNode>>;
