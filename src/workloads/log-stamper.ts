/**
 * Finds and starts `plexus-logstamp` (native/logstamp), the small program that stamps each line
 * of an app's output with its capture time. It sits between the app and its log file as a
 * separate process, so lines keep their times while the agent is down (apps outlive it).
 * `scripts/bootstrap` compiles it; a release carries it at the same place.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, appendFileSync, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { stampLine } from '../core/log-stamp.ts';

/** Where the stamper lives, relative to a checkout or an unpacked release. */
export const LOG_STAMPER_PATH = join('native', 'logstamp', 'build', 'plexus-logstamp');

/**
 * The stamper's path, or undefined when this installation has none (a checkout that has not run
 * `scripts/bootstrap`). Looked for above this module (sources: src/workloads; a release's bundle:
 * dist; a checkout's bundle: .tools/compile-cache) and above the CLI that started the agent.
 */
export function findLogStamper(): string | undefined {
  const starts = [import.meta.dirname];
  if (process.argv[1]) starts.push(dirname(process.argv[1]));
  for (const start of starts) {
    for (let dir = start, i = 0; i < 4; i++, dir = resolve(dir, '..')) {
      const candidate = join(dir, LOG_STAMPER_PATH);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here; one level up
      }
    }
  }
  return undefined;
}

/**
 * Starts a stamper that appends to `logFd` and returns it; the caller hands `stamper.stdin` to
 * the app as its stdout and stderr, then calls `release`. Its own session, so that stopping the
 * app's process group leaves it to write the app's last lines; it ends when the pipe closes.
 * It runs as the app's user: it holds nothing but the open log file.
 */
export function startLogStamper(
  path: string,
  logFd: number,
  user: { uid: number; gid: number } | undefined,
): { stamper: ChildProcess; release: () => void } {
  const ids = user && user.uid !== process.getuid?.() ? { uid: user.uid, gid: user.gid } : {};
  const stamper = spawn(path, [], { stdio: ['pipe', logFd, 'ignore'], detached: true, ...ids });
  stamper.on('error', () => {
    // Found executable a moment ago; a failure now leaves the app with a closed pipe, which the
    // backend sees as the app's exit and restarts.
  });
  stamper.unref();
  return {
    stamper,
    release: () => {
      stamper.stdin?.destroy();
    },
  };
}

/** A line the agent itself adds to an app's log (`… [plexus] process 12 exit code 3`), stamped. */
export function marker(text: string): string {
  return `${stampLine(`[plexus] ${text}`)}\n`;
}

/** Appends a marker to an app's log file; a log folder that is gone (app removed) is no error. */
export function appendMarker(logFile: string, text: string): void {
  try {
    appendFileSync(logFile, marker(text));
  } catch {
    // The marker is only a courtesy.
  }
}
