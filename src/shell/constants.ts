/** Defaults of interactive sessions (issue 16), each with why it was chosen. */

/**
 * The most bytes one input frame may carry (decoded). Keystrokes are a few bytes; `exec -i` and
 * `cp` stream 128 KiB chunks, a size at which the per-frame signature costs under 1 % of the
 * time. Anything bigger is refused, and the session ends.
 */
export const MAX_SESSION_CHUNK_BYTES = 256 * 1024;
/** Output is sent in frames of at most this many bytes (a PTY reads 4–64 KiB at a time). */
export const MAX_OUTPUT_CHUNK_BYTES = 128 * 1024;
/** A terminal larger than this is a mistake or an attack on the shell's memory. */
export const MAX_TERMINAL_CELLS = 1000;
/** The default of `shell.idleTimeout`: half an hour, as for an ssh session with ClientAliveInterval. */
export const DEFAULT_IDLE_TIMEOUT_S = 30 * 60;
/** The default of `shell.maxSessions`: more than any team opens on one node, few enough to bound PTYs. */
export const DEFAULT_MAX_SESSIONS = 32;
/** The default of `shell.user`: a login user of its own, created on first use, never root. */
export const DEFAULT_SHELL_USER = 'plexus-shell';
/** Recordings kept per node (`shell.recordKeep`): the oldest are deleted first. */
export const DEFAULT_RECORD_KEEP = 200;
/** One recording's limit (`shell.recordMaxBytes`); past it the session goes on unrecorded. */
export const DEFAULT_RECORD_MAX_BYTES = 64 * 1024 * 1024;
/** Session rows kept on a node; older ones are pruned, as for the command audit. */
export const MAX_SESSION_ROWS = 100_000;
/**
 * The CLI sends a signed keep-alive this often while nobody types, so that transports with an
 * input idle deadline (30 s) keep the session; keep-alives do not count against the idle timeout.
 */
export const KEEPALIVE_INTERVAL_MS = 10_000;
/** A process that ignores SIGHUP is killed this long after its session ended. */
export const KILL_GRACE_MS = 2_000;
