/**
 * The time stamp in front of each line of an app's log file: `2026-12-06T01:22:33.123Z <line>`.
 * The process backend's stamper (native/logstamp) writes it as it captures a line, the agent's
 * markers and the systemd backend's journal lines use the same form, and `plexus logs --since`
 * reads it back. Files written before stamps existed stay readable: their lines have no time.
 */

const STAMPED = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /;
/** The agent's markers before stamps: `[plexus] 2026-…Z text`. */
const OLD_MARKER = /^\[plexus\] (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /;

/** One log line split into its capture time (ms since the epoch, when it has one) and its text. */
export interface StampedLine {
  time: number | undefined;
  text: string;
}

/** `text` with the capture time `at` in front, as the stamper writes it (no newline). */
export function stampLine(text: string, at: number = Date.now()): string {
  return `${new Date(at).toISOString()} ${text}`;
}

/** Splits a line of an app log into time and text; an unstamped (older) line has no time. */
export function parseStampedLine(line: string): StampedLine {
  const m = STAMPED.exec(line);
  if (m) return { time: Date.parse(m[1]), text: line.slice(m[0].length) };
  const old = OLD_MARKER.exec(line);
  if (old) return { time: Date.parse(old[1]), text: line };
  return { time: undefined, text: line };
}
