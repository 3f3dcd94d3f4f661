/**
 * App and agent log files. A child writes straight into its log file through an O_APPEND file
 * descriptor, so it keeps logging while the agent is down; the agent rotates by copy + truncate
 * (as logrotate's copytruncate does), because it cannot make a detached child reopen its file.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { copyFile, open, rename, stat, truncate } from 'node:fs/promises';
import { LOG_FOLLOW_POLL_MS } from './constants.ts';

/** Opens `path` for appending, for a child's stdout and stderr. */
export function openLogFd(path: string): number {
  return openSync(path, 'a', 0o600);
}

/** Rotates `path` once it is over `maxBytes`, keeping `keep` old files (`.1` newest). */
export async function rotateIfLarge(path: string, maxBytes: number, keep: number): Promise<boolean> {
  try {
    if ((await stat(path)).size < maxBytes) return false;
    for (let i = keep - 1; i >= 1; i--) {
      if (existsSync(`${path}.${i}`)) await rename(`${path}.${i}`, `${path}.${i + 1}`);
    }
    await copyFile(path, `${path}.1`);
    await truncate(path, 0);
    return true;
  } catch {
    // Best effort: a failed rotation must never stop an app or the agent.
    return false;
  }
}

/** The last `n` lines of `path` (and of `path.1` when `path` holds fewer), oldest first. */
export function tailLines(path: string, n: number): string[] {
  const lines = lastLines(path, n);
  if (lines.length < n) return [...lastLines(`${path}.1`, n - lines.length), ...lines];
  return lines;
}

function lastLines(path: string, n: number): string[] {
  if (n <= 0) return [];
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = statSync(path).size;
    const chunk = 64 * 1024;
    let pos = size;
    let text = '';
    let newlines = 0;
    // Read backwards until we have n complete lines (n + 1 newlines) or reach the start.
    while (pos > 0 && newlines <= n) {
      const len = Math.min(chunk, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, pos);
      const part = buf.toString('utf8');
      for (const ch of part) if (ch === '\n') newlines++;
      text = part + text;
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-n);
  } finally {
    closeSync(fd);
  }
}

/**
 * Calls `onLines` with every complete line appended to `path` from now on, until `signal`
 * aborts. A file that shrinks was rotated or truncated: reading starts again from its start.
 */
export async function followFile(
  path: string,
  onLines: (lines: string[]) => Promise<void> | void,
  signal: AbortSignal,
): Promise<void> {
  let offset = existsSync(path) ? statSync(path).size : 0;
  let partial = '';
  while (!signal.aborted) {
    let size = 0;
    try {
      size = (await stat(path)).size;
    } catch {
      size = 0;
    }
    if (size < offset) {
      offset = 0;
      partial = '';
    }
    if (size > offset) {
      const fh = await open(path, 'r');
      try {
        const len = Math.min(size - offset, 1024 * 1024);
        const buf = Buffer.alloc(len);
        const { bytesRead } = await fh.read(buf, 0, len, offset);
        offset += bytesRead;
        const text = partial + buf.subarray(0, bytesRead).toString('utf8');
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        if (lines.length) await onLines(lines);
      } finally {
        await fh.close();
      }
      continue;
    }
    await new Promise<void>((r) => {
      const t = setTimeout(r, LOG_FOLLOW_POLL_MS);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          r();
        },
        { once: true },
      );
    });
  }
}
