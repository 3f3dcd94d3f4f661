/**
 * How `plexus logs` prints: as text (agent lines as `time level module: message`), or with
 * `--json` one JSON object a line; `--since 10m` keeps the agent's lines of the last ten minutes
 * (app lines carry no time of their own, so it needs `--system`).
 */
import { UsageError } from './errors.ts';

/** `90s`, `10m`, `2h`, `7d` in milliseconds. */
export function parseSince(text: string): number {
  const m = /^(\d{1,7})([smhd])$/.exec(text.trim());
  if (!m) throw new UsageError(`bad --since '${text}': use forms like 90s, 10m, 2h, 7d`);
  return Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** Options of the logs verb that shape its output. */
export interface LogView {
  app?: string;
  system: boolean;
  json: boolean;
  /** Milliseconds back from now; agent log only. */
  sinceMs?: number;
}

/** Turns one log line into what to print, or undefined to leave it out. */
export function logLineFormatter(v: LogView, now = Date.now()): (line: string) => string | undefined {
  if (v.sinceMs !== undefined && !v.system) {
    throw new UsageError(
      "--since needs --system: an app's lines carry no time of their own (use -n to choose how many)",
    );
  }
  const from = v.sinceMs === undefined ? undefined : now - v.sinceMs;
  return (line) => {
    if (!v.system) return v.json ? JSON.stringify({ app: v.app, line }) : line;
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
