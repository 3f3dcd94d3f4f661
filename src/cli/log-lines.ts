/**
 * How `plexus logs` prints: as text (agent lines as `time level module: message`, app lines as
 * stored, their capture time in front), or with `--json` one JSON object a line; `--since 10m`
 * keeps the lines of the last ten minutes. App lines carry the time they were captured
 * (core/log-stamp.ts); lines of files written before stamps existed have none, and `--since`
 * leaves them out.
 */
import { parseStampedLine } from '../core/log-stamp.ts';
import { UsageError } from './errors.ts';

/** How far back `--since` may reach: ten years, past any log a node keeps. */
const SINCE_MAX_MS = 3650 * 86_400_000;

/** `90s`, `10m`, `2h`, `7d` in milliseconds; at least a second, at most ten years. */
export function parseSince(text: string): number {
  const m = /^(\d{1,7})([smhd])$/.exec(text.trim());
  if (!m) throw new UsageError(`bad --since '${text}': use a whole number and a unit, like 90s, 10m, 2h, 7d`);
  const ms =
    Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  if (ms === 0) throw new UsageError(`bad --since '${text}': give a duration above zero, like 10m`);
  if (ms > SINCE_MAX_MS) throw new UsageError(`bad --since '${text}': at most 3650d`);
  return ms;
}

/** Options of the logs verb that shape its output. */
export interface LogView {
  app?: string;
  system: boolean;
  json: boolean;
  /** Milliseconds back from now. */
  sinceMs?: number;
}

/** Turns one log line into what to print, or undefined to leave it out. */
export function logLineFormatter(v: LogView, now = Date.now()): (line: string) => string | undefined {
  const from = v.sinceMs === undefined ? undefined : now - v.sinceMs;
  return (line) => {
    if (!v.system) {
      const { time, text } = parseStampedLine(line);
      if (from !== undefined && (time === undefined || time < from)) return undefined;
      return v.json ? JSON.stringify({ app: v.app, time: time ?? null, line: text }) : line;
    }
    let o: { time?: number } | undefined;
    try {
      o = JSON.parse(line) as { time?: number };
    } catch {
      o = undefined;
    }
    if (from !== undefined && (typeof o?.time !== 'number' || o.time < from)) return undefined;
    if (v.json) return o ? line : JSON.stringify({ line });
    return o ? formatAgentLine(o) : line;
  };
}

/** An agent JSON log line as `time level module: message {rest}`. */
function formatAgentLine(o: Record<string, unknown>): string {
  const {
    time,
    level,
    module,
    msg,
    pid: _p,
    hostname: _h,
    node: _n,
    ...rest
  } = o as {
    time?: number;
    level?: number;
    module?: string;
    msg?: string;
    [k: string]: unknown;
  };
  const name =
    { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }[level ?? 30] ?? 'info';
  const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
  return `${new Date(time ?? 0).toISOString()} ${name.padEnd(5)} ${module ?? '-'}: ${msg ?? ''}${extra}`;
}
