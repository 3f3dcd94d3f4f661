/** Defaults of the workload manager, each with why it was chosen. */

/** Releases kept per app: enough to roll back a few steps without filling the disk (docs/workloads.md). */
export const KEEP_RELEASES = 5;
/** Rows of `releases` kept per app, pruned and failed ones included: a readable recent history. */
export const KEEP_RELEASE_ROWS = 20;

/** Health check deadline of a deploy (issue 3: "within a timeout (default 30 s)"). */
export const DEFAULT_HEALTH_TIMEOUT_MS = 30_000;
/** Pause between health probes in the first second: a refused connect costs microseconds, and a deploy is done as soon as the app is up. */
export const HEALTH_PROBE_FAST_MS = 5;
/** Pause between health probes after the first second. */
export const HEALTH_PROBE_INTERVAL_MS = 25;
/** One health probe may take this long before it counts as a failure. */
export const HEALTH_PROBE_TIMEOUT_MS = 2_000;

/** Largest download or upload: a bundle bigger than this is almost certainly a mistake. */
export const MAX_BUNDLE_BYTES = 512 * 1024 * 1024;
/** Largest total size once extracted (zip bombs expand by 1000x; we stop at this). */
export const MAX_EXTRACTED_BYTES = 2 * 1024 * 1024 * 1024;
/** Most entries in one archive: node_modules trees reach tens of thousands, bombs millions. */
export const MAX_ARCHIVE_ENTRIES = 100_000;
/**
 * Size of the pieces a bundle moves in, from the socket to gunzip, from gunzip to tar, and so to
 * each file write. A socket read brings 64 KiB, and every piece costs a thread-pool round trip
 * in gunzip and in fs.write (~20 µs of main-thread time each on the 2-core dev VM), so 64 KiB
 * pieces spent most of a 20 MB deploy on hand-offs: download + extract went from 148 to 110 ms
 * (median of 10, against 138 ms for `curl | tar xz`) with 1 MiB pieces; 256 KiB gave 114–121 ms,
 * 4 MiB nothing more. At most a few pieces are in flight, so memory stays a few MiB.
 */
export const STREAM_CHUNK_BYTES = 1024 * 1024;
/** A download that sends nothing for this long has stalled. */
export const DOWNLOAD_IDLE_TIMEOUT_MS = 30_000;
/** Largest plexus.yaml manifest. */
export const MAX_MANIFEST_BYTES = 64 * 1024;

/** First restart delay after a crash (issue 3: "about 100 ms doubling to 15 s"). */
export const RESTART_BACKOFF_MIN_MS = 100;
/** Longest restart delay. */
export const RESTART_BACKOFF_MAX_MS = 15_000;
/** An app that stayed up this long is healthy again: its backoff and crash count reset. */
export const RESTART_RESET_AFTER_MS = 30_000;
/** Consecutive quick crashes after which the app shows `crashloop` while still retrying. */
export const CRASHLOOP_AFTER = 3;
/** Consecutive quick crashes after which the app is `failed` and no longer restarted. */
export const CRASHLOOP_LIMIT = 10;
/** Grace period between SIGTERM and SIGKILL: long enough for an HTTP server to drain. */
export const STOP_GRACE_MS = 10_000;
/** How often adopted processes (not our children, so no exit event) are checked for life. */
export const ADOPTED_POLL_MS = 250;

/** App log files rotate past this size. */
export const APP_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Rotated app log files kept (`app.log.1` …). */
export const APP_LOG_KEEP = 3;
/** How often log sizes are checked: bounds the overshoot to what an app writes in that time. */
export const APP_LOG_CHECK_MS = 5_000;
/** Most lines `logs -n` returns. */
export const MAX_LOG_LINES = 10_000;
/** Poll interval of `logs -f` (fs.watch is unreliable across rotation and on some filesystems). */
export const LOG_FOLLOW_POLL_MS = 200;

/** Accepted clock skew of a webhook timestamp (issue 3: ±5 min). */
export const WEBHOOK_WINDOW_S = 300;
/** Largest webhook body: `{url, sha256}` fits in far less. */
export const MAX_WEBHOOK_BODY_BYTES = 16 * 1024;

/** Events kept per app in the events log. */
export const KEEP_EVENTS_PER_APP = 500;

/**
 * Capabilities an app may be given (`deploy --cap`, admins only): those that let a service do one
 * ordinary thing without leading back to root. NET_BIND_SERVICE: listen on ports below 1024;
 * NET_RAW: ping and other raw sockets; IPC_LOCK: lock memory (databases, secrets). Anything that
 * reaches root (SYS_ADMIN, DAC_OVERRIDE, SETUID…) is `--user root --allow-root` or nothing.
 */
export const APP_CAPABILITIES = ['NET_BIND_SERVICE', 'NET_RAW', 'IPC_LOCK'] as const;

/** Prefix of the system user each app gets (issue 13: `plexus-app-NAME`). */
export const APP_USER_PREFIX = 'plexus-app-';
/** Longest Linux user name `useradd` accepts (shadow's default LOGIN_NAME_MAX check). */
export const MAX_USER_NAME = 32;
/**
 * GECOS comment of the users plexus creates, followed by the app's name: how the agent tells a
 * user it made from one of the same name that someone else did.
 */
export const APP_USER_COMMENT = 'plexus app';

/**
 * How long an old release may keep serving the connections it had when traffic moved to the new
 * one (issue 18: "the old release drains (config, default 30 s)"). It is stopped as soon as they
 * are done, at the latest after this; then it gets SIGTERM and STOP_GRACE_MS to exit.
 */
export const DRAIN_TIMEOUT_MS = 30_000;
/** How often a draining release's open connections are counted. */
export const DRAIN_POLL_MS = 50;
/** The agent's nftables table (family inet) holding the kernel redirects of apps' declared ports. */
export const NFT_TABLE = 'plexus';
/** Longest run of one `nft -f` (it normally takes a few ms). */
export const NFT_TIMEOUT_MS = 10_000;
/** Ports the kernel may hand out before one outside the reserved ones comes (each try is a bind). */
export const PRIVATE_PORT_TRIES = 20;
/** Pause between checks that an old release stopped accepting on its port (the fallback's handoff). */
export const HANDOFF_POLL_MS = 2;
/** Declared ports below this are refused unless the config allows them (system services live there). */
export const FIRST_UNPRIVILEGED_PORT = 1024;
