/** Defaults of the mesh, each with why it was chosen. */

/**
 * Admission protocol: the only protocol a peer that is not a member may use, and only at the
 * join door (door.ts), a listener of its own with Noise and no swarm key.
 */
export const ADMIT_PROTOCOL = '/plexus/admit/2.0.0';
/** Anti-entropy: a peer asks another for its full membership view. */
export const MEMBERS_PROTOCOL = '/plexus/members/1.0.0';
/** Anti-entropy, digests first: whole snapshots only when the two views differ (membership-sync.ts). */
export const MEMBERS_DIGEST_PROTOCOL = '/plexus/members/1.1.0';
/** Kad-DHT under our own prefix so it never mixes with the public Amino DHT. */
export const DHT_PROTOCOL = '/plexus/kad/1.0.0';
/**
 * How often libp2p's connection monitor pings each connection (RTT for `peers`, dead links
 * dropped). 30 s rather than libp2p's 10 s: see node.ts for the cost of every ping.
 */
export const CONNECTION_PING_MS = 30_000;
/** How often yamux pings a connection after its first ping: see node.ts. */
export const YAMUX_KEEPALIVE_MS = 120_000;

/**
 * Every yamux stream's options. Larger windows let one stream fill a fast link (tunnels; see
 * bench/tunnel). A paused reader stops sending window updates, but the sender may still send what
 * the window allows, up to the maximum: libp2p aborts a stream whose unread data passes
 * `maxReadBufferLength` (4 MiB by default), so that cap must sit above the window or backpressure
 * becomes a reset. A relayed connection rides such a stream, and large transfers to NAT'd nodes
 * were reset mid-way on a loaded machine (test/unit/mesh/yamux-read-buffer.test.ts).
 */
export const YAMUX_STREAM_OPTIONS = {
  initialStreamWindowSize: 256 * 1024,
  maxStreamWindowSize: 16 * 1024 * 1024,
  maxReadBufferLength: 16 * 1024 * 1024 + 1024 * 1024,
};
/** Gossip topic of admissions and revocations. */
export const MEMBERS_TOPIC = 'plexus/members/1';
/** Gossip topic of telemetry records (docs/telemetry.md). */
export const TELEMETRY_TOPIC = 'plexus/telemetry/1';

/** A token is about a kilobyte; 12 KiB leaves room for 16 door addresses of the longest kind. */
export const MAX_TOKEN_BYTES = 12 * 1024;
/** A token's certificate (the token without its secret), as admissions carry it. */
export const MAX_TOKEN_CERT_BYTES = 12 * 1024;
/** Admission request/response frames: a token, a record and a reply with the member list head. */
export const MAX_ADMIT_FRAME_BYTES = 64 * 1024;
/** A full membership snapshot: ~1.5 KiB per member (each carries its token), 16 MiB covers 10 000. */
export const MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024;
/** One signed record (a member's record, a revocation); an admission adds a token certificate. */
export const MAX_RECORD_BYTES = 4 * 1024;
/** One admission: a member record, its token's certificate and the token key's signature. */
export const MAX_ADMISSION_BYTES = MAX_RECORD_BYTES + MAX_TOKEN_CERT_BYTES + 256;
/** A telemetry record (issue 4: at most 16 KiB). */
export const MAX_TELEMETRY_BYTES = 16 * 1024;

/** Deadline for one protocol exchange (admission, sync, ping). */
export const PROTOCOL_TIMEOUT_MS = 10_000;
/** How often the connector re-checks that every member is connected. */
export const CONNECT_INTERVAL_MS = 3_000;
/** Longest wait between redials of an unreachable member (exponential backoff cap). */
export const MAX_REDIAL_BACKOFF_MS = 30_000;
/**
 * A member we know no address of is first looked up in the DHT this long after we noticed it
 * (a newcomer dials us well before that), then at most once per LOOKUP_INTERVAL_MS.
 */
export const LOOKUP_DELAY_MS = 15_000;
export const LOOKUP_INTERVAL_MS = 60_000;
/** For this long after it starts, a node publishes its record whenever a member subscribes. */
export const NEWCOMER_MS = 60_000;
/** Periodic anti-entropy with one random peer, to heal anything gossip missed. */
export const SYNC_INTERVAL_MS = 30_000;
/** A peer is online within this many telemetry intervals, suspect within SUSPECT_AFTER, else down. */
export const ONLINE_INTERVALS = 3;
export const DOWN_INTERVALS = 6;
/** Default token lifetime: long enough to provision a machine, short enough to limit a leak. */
export const DEFAULT_TOKEN_TTL_S = 3600;
/** Default mesh port (docs/architecture.md, Data layout). */
export const DEFAULT_MESH_PORT = 7070;

/**
 * How far apart two honest clocks, or a record's signing and its arrival, may be: a member
 * record dated more than this outside its token's lifetime is refused, and so is one first seen
 * more than this after its token expired or was revoked (docs/architecture.md, Trust model).
 */
export const CLOCK_ALLOWANCE_MS = 5 * 60_000;
/**
 * A member is settled once it has been known this long: a later claim to its name or to its
 * token's last use is refused and reported, never preferred. Before that, two claims that raced
 * (two doors admitting at once) are decided the same way everywhere: the earlier record wins.
 * Short on purpose: a real race is over once gossip has crossed the mesh and the door's hold
 * (JOIN_HOLD_MS) has passed, and every second of it is a second in which whoever holds a token
 * with a use left could date a record just before a newcomer's and take its name.
 */
export const SETTLE_MS = 15_000;
/** Refused claims kept for `plexus peers` and to judge each only once; the oldest go first. */
export const MAX_LOST_ROWS = 1000;
/** Default door port when the mesh uses its default port (a fixed one, for firewalls and tokens). */
export const DEFAULT_DOOR_PORT = 7073;
/** A door holds a fresh admission this long before answering, so that a racing claim can arrive. */
export const JOIN_HOLD_MS = 1000;
/** Admission attempts per source address: a burst, then one per DOOR_REFILL_MS. */
export const DOOR_BURST = 10;
export const DOOR_REFILL_MS = 3000;
/** A door connection is closed this long after it opened, whatever it is doing. */
export const DOOR_CONNECTION_MS = 15_000;

/** Members fetch a rotated swarm key from a member that holds it (swarm-rotation.ts). */
export const SWARM_KEY_PROTOCOL = '/plexus/swarm-key/1.0.0';
/**
 * A rotation takes effect this long after the admin signs it: enough for the record to reach
 * every connected member and for each to fetch the key (one gossip hop and one round trip, well
 * under a second on a LAN; a relayed member a few), so that they all switch together.
 */
export const ROTATION_LEAD_MS = 10_000;
/** A rotation record may not schedule its switch further out than this (a typo'd clock). */
export const MAX_ROTATION_LEAD_MS = 60 * 60_000;
/** A rotation record: its fields and up to MAX_ROTATION_REVOKED peer ids. */
export const MAX_ROTATION_BYTES = 16 * 1024;
/** The most recently revoked nodes a rotation names, so no member hands them its key. */
export const MAX_ROTATION_REVOKED = 64;
/**
 * A node that has had no member connection this long since it started, or since its last
 * connection closed, asks join doors for the current swarm key (it may have missed a rotation
 * while it was off), then again every REKEY_INTERVAL_MS while that lasts.
 */
export const REKEY_AFTER_MS = 15_000;
export const REKEY_INTERVAL_MS = 60_000;
/** Join door addresses of members kept in network.json for that (they outlive a restart). */
export const MAX_KNOWN_DOORS = 32;

/**
 * Dial-back (dialback.ts): a member asks another to dial it back on the address the connection
 * came from, to learn whether it can be dialled at all (behind NAT or not).
 */
export const DIALBACK_PROTOCOL = '/plexus/dialback/1.0.0';
/** A request names at most this many ports, in a frame of at most MAX_DIALBACK_FRAME_BYTES. */
export const MAX_DIALBACK_PORTS = 4;
export const MAX_DIALBACK_FRAME_BYTES = 512;
/** Dial-backs per asker: a burst (start, an address change), then one per DIALBACK_REFILL_MS. */
export const DIALBACK_BURST = 3;
export const DIALBACK_REFILL_MS = 60_000;
/** Dial-backs this node runs at once for all askers; more are refused (BUSY), not queued. */
export const MAX_DIALBACKS_IN_FLIGHT = 4;
/** How long one dial-back dial may take: a dropped SYN is what NAT looks like, so not long. */
export const DIALBACK_DIAL_TIMEOUT_MS = 3_000;
/** Members asked per check: one success says dialable; all failing says behind NAT. */
export const DIALBACK_ASK = 3;
/**
 * Reachability is checked a moment after the first member connection (not during the join's
 * burst of dials), when this node's addresses change, while it is unknown at most once per
 * REACH_RETRY_MS, and otherwise every REACH_RECHECK_MS: slow, since a server's NAT rarely changes.
 */
export const REACH_FIRST_CHECK_MS = 1_500;
export const REACH_RETRY_MS = 30_000;
export const REACH_RECHECK_MS = 15 * 60_000;
/** Relay reservations a node behind NAT holds when the config does not say (two: one may die). */
export const NAT_RESERVATIONS = 2;

/** Hole punching between two nodes behind NAT (punch.ts), coordinated over their relayed link. */
export const PUNCH_PROTOCOL = '/plexus/punch/1.0.0';
export const MAX_PUNCH_FRAME_BYTES = 512;
/** How long both simultaneous dials of one punch may take (SYNs are retransmitted after 1 s, 3 s). */
export const PUNCH_DIAL_TIMEOUT_MS = 6_000;
/** Between punch attempts to one member: the first soon, then doubling up to the cap. */
export const PUNCH_FIRST_MS = 2_000;
export const PUNCH_MAX_BACKOFF_MS = 10 * 60_000;
/** A member may ask this node to punch at most once per PUNCH_ANSWER_MS. */
export const PUNCH_ANSWER_MS = 10_000;
