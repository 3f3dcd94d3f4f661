/** Defaults of the telemetry subsystem, each with why it was chosen. */

/**
 * A figure that depends on a delta (cpu %, network rates) is recomputed at most this often:
 * an app-change publish right after a periodic one would otherwise divide by a few ms of noise.
 */
export const MIN_SAMPLE_GAP_MS = 1_000;

/** Coalesce a burst of app state changes into one immediate publish (a deploy flips several). */
export const APP_CHANGE_DEBOUNCE_MS = 50;

/** Fine history span (issue 4: for example 1 h at 5 s). */
export const FINE_HISTORY_SPAN_S = 3_600;
/** Most fine points per node, whatever the interval: 1 h at 1 s; bounds memory at short intervals. */
export const MAX_FINE_POINTS = 3_600;
/** Coarse history: 24 h of 1-minute means. */
export const COARSE_STEP_S = 60;
export const COARSE_POINTS = 1_440;
/**
 * Most nodes with history. A node costs ~(720 + 1440) × 11 × 8 B ≈ 190 KB at the default interval,
 * so 1024 nodes stay under 200 MB even in the worst case; beyond that new nodes get no history.
 */
export const MAX_HISTORY_NODES = 1_024;

/** Panel heartbeats kept while the panel is unreachable (docs/telemetry.md: at most 10). */
export const PANEL_QUEUE_MAX = 10;
/** One panel POST must answer within this time (a panel that never answers must not pile up). */
export const PANEL_TIMEOUT_MS = 10_000;
/** Bounds on a panel's `next_heartbeat_seconds`, so a buggy panel can neither flood nor mute us. */
export const PANEL_MIN_INTERVAL_S = 1;
export const PANEL_MAX_INTERVAL_S = 3_600;
/** Largest panel reply we read (it only carries `next_heartbeat_seconds`). */
export const PANEL_MAX_REPLY_BYTES = 64 * 1024;

/**
 * How often /metrics' event-loop-lag histogram samples the loop (prom-client's
 * `eventLoopMonitoringPrecision`). Its default, 10 ms, woke an idle agent 100 times a second,
 * which was a fifth of its CPU (5-agent mesh idle for 60 s: 0.74 % → 0.59 % of a core per agent
 * at 100 ms; 1000 ms saved no more). A stall of the loop still shows in the percentiles.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** Histogram buckets (seconds) of publish → receipt delay: fine around the 500 ms target. */
export const DELIVERY_DELAY_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2, 5, 10,
];

/**
 * Where container engines listen (issue 18): Docker's socket, rootful Podman's. A rootless
 * Podman's (`$XDG_RUNTIME_DIR/podman/podman.sock`) is added when the agent runs as that user.
 */
export const CONTAINER_SOCKETS = ['/var/run/docker.sock', '/run/podman/podman.sock'];
/** One engine call must complete within this: a hung engine must not hold the record. */
export const ENGINE_TIMEOUT_MS = 2_000;
/** Largest container list read: ~1 KiB per container, so about 1000 containers. */
export const ENGINE_MAX_LIST_BYTES = 1024 * 1024;
/** Largest stats answer read for one container (a few KiB in practice, more with many CPUs). */
export const ENGINE_MAX_STATS_BYTES = 256 * 1024;
/** Stats calls at once: the engine computes each one; more would load it for nothing. */
export const ENGINE_STATS_CONCURRENCY = 4;

/** `telemetry.watch` sends at most one snapshot per this gap: a burst of records becomes one. */
export const WATCH_MIN_GAP_MS = 100;
/** …and one at least this often, so a peer going down (which sends nothing) shows up too. */
export const WATCH_HEARTBEAT_MS = 5_000;
