/** Defaults of the tunnels, each with why it was chosen. */

/** The tunnel protocol (docs/tunnels.md). */
export const TCP_PROTOCOL = '/plexus/tcp/1.0.0';

/** A request header is `{service}` or `{port}`; 1 KiB leaves room and bounds what a peer can send. */
export const MAX_HEADER_BYTES = 1024;
/** A reply header is `{ok}` or `{ok, code, message}` with a one-line message. */
export const MAX_REPLY_BYTES = 1024;

/**
 * Concurrent tunnels to or from one peer. Yamux refuses more than 1000 inbound streams per
 * connection across every protocol, so tunnels keep well under that and leave room for the
 * mesh's own streams (gossip, sync, commands).
 */
export const MAX_TUNNELS_PER_PEER = 512;
/** Concurrent tunnels in total: each holds two sockets (fds) and up to a yamux window of memory. */
export const MAX_TUNNELS_TOTAL = 2048;
/**
 * The side that serves tunnels allows this many times MAX_TUNNELS_PER_PEER from one peer (640,
 * still well under yamux's 1000 streams): the opener frees a slot when its side closes, a moment
 * before the served side's splice ends, so a busy client at its limit is not refused.
 */
export const SERVED_HEADROOM = 1.25;
/**
 * Past the limits, a client's tunnels wait for a slot (a burst of connections to a forward
 * queues instead of being reset), up to this many at once; each waits at most OPEN_TIMEOUT_MS.
 */
export const MAX_WAITING_TUNNELS = 4096;

/** Opening a stream to a peer (dial + protocol negotiation + reply) must not hang a client. */
export const OPEN_TIMEOUT_MS = 10_000;
/**
 * One negotiated stream is kept ready per recently used peer, so a new connection skips the
 * protocol-negotiation round trip; it is given back after this long unused.
 */
export const POOL_IDLE_MS = 20_000;
/** How long the server waits for a header: longer than a pooled stream may sit unused. */
export const HEADER_WAIT_MS = 30_000;
/** Connecting to the exposed local port: loopback answers at once or never. */
export const TARGET_CONNECT_TIMEOUT_MS = 5_000;

/**
 * Socket reads are coalesced up to this many bytes before one `stream.send()`: yamux and Noise
 * cost per frame, so fewer, larger frames go faster (measured in bench/tunnel.ts).
 */
export const COALESCE_BYTES = 256 * 1024;

/**
 * Per tunnel, at most this much waits in the stream's write buffer before the socket is paused:
 * enough to keep a fast connection busy while window updates travel, little enough that a
 * thousand stalled tunnels cannot exhaust memory.
 */
export const STREAM_HIGH_WATER_BYTES = 4 * 1024 * 1024;
/**
 * What a paused stream may still buffer of what the far end had in flight: well over a yamux
 * window, so that pausing for a slow client never overflows (and aborts) the stream.
 */
export const STREAM_MAX_READ_BUFFER_BYTES = 64 * 1024 * 1024;

// ---- data connections (docs/tunnels.md) --------------------------------------------------------

/**
 * Ready data connections kept per recently used peer: a burst of short connections takes them
 * without any round trip over the mesh; four cost four idle sockets.
 */
export const DATA_POOL_SIZE = 4;
/** A data listener answers a connect at once on a LAN or loopback; past this it is filtered. */
export const DATA_CONNECT_TIMEOUT_MS = 2_000;
/**
 * Handshakes one client keeps under way with one peer: well under the far listener's
 * MAX_DATA_HANDSHAKES_PER_SOURCE; tunnels of a burst beyond it ride the mesh stream.
 */
export const MAX_DATA_OPENING_PER_PEER = 16;
/** A failed data connection within this long after one that worked does not mark the path down. */
export const DATA_OK_GRACE_MS = 10_000;
/** Reverse connections asked for in one request (its tickets fit a 1 KiB header). */
export const MAX_REVERSE_BATCH = 8;
/** Reverse connections one peer may have us dial at once. */
export const MAX_REVERSE_DIALS_PER_PEER = 16;
/** A peer whose data port could not be reached is tried again after this long. */
export const DATA_RETRY_MS = 5 * 60_000;
/** Tickets asked for in one request: a thousand connections at once need 16 round trips. */
export const MAX_TICKET_BATCH = 64;
/**
 * Tickets fetched per request at least: each later data connection within their lifetime costs
 * a TCP connect instead of a round trip over the mesh (which was most of a short tunnel's
 * added latency when every connection fetched its own: bench/tunnel.ts).
 */
export const TICKET_PREFETCH = 16;
/** A cached ticket is used only this long before the server would expire it. */
export const TICKET_MARGIN_MS = 2_000;
/** A ticket reply: 64 tickets of about 70 bytes each, and the listener's address. */
export const MAX_TICKET_REPLY_BYTES = 16 * 1024;
/** An unused ticket expires: the client connects right after it gets one. */
export const TICKET_TTL_MS = 10_000;
/** Unused tickets one peer may hold: more than its tunnel limit plus its pool. */
export const MAX_TICKETS_PER_PEER = 1024;
/** Unused tickets in total. */
export const MAX_TICKETS_TOTAL = 8192;
/** A connection to the data port must finish its TLS handshake within this time. */
export const DATA_HANDSHAKE_TIMEOUT_MS = 5_000;
/** Connections that have not finished their handshake: bounds what a port scan can hold open. */
export const MAX_DATA_HANDSHAKES = 1024;
/**
 * Of those, from one source address (an IPv6 /64): far more than a member's pool and bursts
 * need (tickets are used within a second of their handshake), and a small share of the total,
 * so one address flooding the port leaves room for everyone else.
 */
export const MAX_DATA_HANDSHAKES_PER_SOURCE = 64;

/** A SOCKS5 client must finish its handshake within this time, or is dropped. */
export const SOCKS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Largest SOCKS5 handshake message (greeting: 2 + 255 methods; request: 4 + 1 + 255 + 2). */
export const SOCKS_MAX_HANDSHAKE_BYTES = 600;
/** Suffix that mesh names may carry in SOCKS requests (`db.web-2.plexus`). */
export const MESH_DOMAIN = 'plexus';

/** Loopback address that exposed ports are reached on, and forwards listen on by default. */
export const LOOPBACK = '127.0.0.1';
/** Most forwards a node keeps: each is a listening socket. */
export const MAX_FORWARDS = 256;
/** Most services a node exposes by hand (apps add their own). */
export const MAX_SERVICES = 256;

// ---- relay splices (docs/tunnels.md, spliced connections) ---------------------------------------

/** Rendezvous asked for in one request (their ids and tickets fit a 1 KiB header). */
export const MAX_SPLICE_BATCH = 8;
/**
 * A rendezvous must have both sides at the relay within this long of being asked for: both
 * dial at once, so a side that has not shown up by then is not coming. Its socket is closed.
 */
export const SPLICE_WAIT_MS = 5_000;
/** Rendezvous waiting for their second side, per peer (either end counts): a pool's worth and bursts. */
export const MAX_SPLICE_WAITING_PER_PEER = 32;
/** Rendezvous waiting in total: each holds at most one idle socket for SPLICE_WAIT_MS. */
export const MAX_SPLICE_WAITING = 256;
/** Spliced pairs one peer may have a relay carry (either end): its tunnel limit's worth. */
export const MAX_SPLICES_PER_PEER = 512;
/** Spliced pairs a relay carries in total: two sockets each. */
export const MAX_SPLICES = 2048;
