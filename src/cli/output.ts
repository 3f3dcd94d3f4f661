/** Printing helpers shared by verbs: JSON or aligned tables. */

/** Prints `value` as pretty JSON (the `--json` contract: stable field names). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints rows as an aligned table with upper-case headers. */
export function printTable(headers: string[], rows: (string | number | undefined | null)[][]): void {
  const cells = [
    headers.map((h) => h.toUpperCase()),
    ...rows.map((r) => r.map((c) => (c == null ? '-' : String(c)))),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  for (const row of cells) {
    process.stdout.write(
      `${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}\n`,
    );
  }
}

/** Human-friendly duration, e.g. `3m12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** Seconds ago of an epoch-ms timestamp, as `12s ago`. */
export function ago(ts: number | null | undefined, now = Date.now()): string {
  if (!ts) return 'never';
  return `${formatDuration((now - ts) / 1000)} ago`;
}
