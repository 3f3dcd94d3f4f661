/** Defaults of the command API (issue 5), each with why it was chosen. */

/** The mesh protocol that carries a signed command to its target (docs/commands.md). */
export const COMMAND_PROTOCOL = '/plexus/cmd/1.0.0';
/** One envelope line: args are small (uploads stream as input frames), so 256 KiB is plenty. */
export const MAX_ENVELOPE_BYTES = 256 * 1024;
/** The envelope must arrive within this time, so a client that never finishes its body is cut off. */
export const ENVELOPE_TIMEOUT_MS = 10_000;
/** One input frame (an upload chunk of 256 KiB is ~350 KiB as base64 in JSON). */
export const MAX_INPUT_FRAME_BYTES = 1024 * 1024;
/** All input of one command (deploy --dir uploads): large enough for a real app, bounded. */
export const MAX_INPUT_BYTES = 512 * 1024 * 1024;
/** A stalled upload is abandoned after this much silence. */
export const INPUT_IDLE_TIMEOUT_MS = 30_000;
/** One reply frame over the mesh (a log line batch, an exec chunk). */
export const MAX_REPLY_FRAME_BYTES = 4 * 1024 * 1024;
/**
 * What a command stream may hold unread: above yamux's largest window (16 MiB, src/mesh/node.ts)
 * and a frame. libp2p resets a stream whose read buffer passes its limit (4 MiB by default),
 * which cut `cp` and `exec -i` uploads to a slow writer through a circuit relay (issue 16).
 */
export const COMMAND_STREAM_READ_BUFFER_BYTES = 16 * 1024 * 1024 + 2 * MAX_REPLY_FRAME_BYTES;
/** Opening a stream to the target (direct or via a relay). */
export const RELAY_DIAL_TIMEOUT_MS = 15_000;
/** Audit rows kept on a node; older ones are pruned so the table cannot grow without bound. */
export const MAX_AUDIT_ROWS = 100_000;
/**
 * Refusals from one source with one code within this window share one audit row with a count
 * (issue 12: one client wrote 375 rows/s and rolled the log over in minutes). A minute keeps the
 * log readable while still showing when a flood started, paused and resumed.
 */
export const REFUSAL_FOLD_WINDOW_MS = 60_000;
/** A folded row's count is written at most this often; readers of the log flush it first. */
export const REFUSAL_FOLD_FLUSH_MS = 2_000;
/** Sources whose fold is remembered (least recently refused forgotten first): bounds memory. */
export const MAX_REFUSAL_FOLDS = 1024;
/**
 * New refusal rows per fold window, over all sources. Past it (a flood from many addresses),
 * refusals fold into one row per code with source `*`, so even a spread-out flood needs hours,
 * not minutes, to roll MAX_AUDIT_ROWS over.
 */
export const MAX_REFUSAL_ROWS_PER_WINDOW = 300;
/** `plexus exec` default timeout and ceiling. */
export const EXEC_DEFAULT_TIMEOUT_S = 60;
export const EXEC_MAX_TIMEOUT_S = 3600;
/** `plexus exec` default output limit (stdout + stderr) and ceiling. */
export const EXEC_DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
export const EXEC_MAX_OUTPUT_BYTES = 1024 * 1024 * 1024;
/** After refusing a body, read and discard the rest this long so the client sees the answer. */
export const DRAIN_AFTER_REFUSAL_MS = 2_000;
/** Commands a node runs or relays at once (streams like logs -f hold a slot); beyond it, BUSY. */
export const MAX_COMMANDS_IN_FLIGHT = 256;
