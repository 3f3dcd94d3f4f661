/** Defaults of the mesh, each with why it was chosen. */

/** Admission protocol: the only protocol a not-yet-admitted peer may use. */
export const ADMIT_PROTOCOL = '/plexus/admit/1.0.0';
/** Anti-entropy: a peer asks another for its full membership view. */
export const MEMBERS_PROTOCOL = '/plexus/members/1.0.0';
/** Kad-DHT under our own prefix so it never mixes with the public Amino DHT. */
export const DHT_PROTOCOL = '/plexus/kad/1.0.0';
/**
 * How often libp2p's connection monitor pings each connection (RTT for `peers`, dead links
 * dropped). 30 s rather than libp2p's 10 s: see node.ts for the cost of every ping.
 */
export const CONNECTION_PING_MS = 30_000;
/** How often yamux pings a connection after its first ping: see node.ts. */
export const YAMUX_KEEPALIVE_MS = 120_000;
/** Gossip topic of admissions and revocations. */
export const MEMBERS_TOPIC = 'plexus/members/1';
/** Gossip topic of telemetry records (docs/telemetry.md). */
export const TELEMETRY_TOPIC = 'plexus/telemetry/1';

/** A token is a few hundred bytes; 8 KiB leaves room for many bootstrap addresses. */
export const MAX_TOKEN_BYTES = 8 * 1024;
/** Admission request/response frames: a token, a record and a reply with the member list head. */
export const MAX_ADMIT_FRAME_BYTES = 64 * 1024;
/** A full membership snapshot: ~600 bytes per member, so 4 MiB covers thousands of nodes. */
export const MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024;
/** One signed record (member admission or revocation). */
export const MAX_RECORD_BYTES = 4 * 1024;
/** A telemetry record (issue 4: at most 16 KiB). */
export const MAX_TELEMETRY_BYTES = 16 * 1024;

/**
 * How long a peer that is not admitted may stay connected: long enough to run admission over a
 * slow link, short enough that a stranger holding the swarm key gets nothing useful.
 */
export const ADMISSION_GRACE_MS = 10_000;
/** After a grace expires, refuse the same peer for this long so it cannot cycle grace windows. */
export const EXPELLED_FOR_MS = 60_000;
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
