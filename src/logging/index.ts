/**
 * The root pino logger, created once by the composition root and passed down as
 * `logger.child({ module })`. It writes JSON lines to stdout and, for `plexus logs --system`,
 * to DATA/logs/agent.log, rotated by size.
 */
import { once } from 'node:events';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';

/** The logger type used everywhere. */
export type Logger = pino.Logger;

/** Options for `createLogger`. */
export interface LoggerInit {
  /** pino level; default `info`. */
  level?: string;
  /** Append JSON lines to this file as well (rotated). */
  file?: string;
  /** Also write to stdout; default true. */
  stdout?: boolean;
  /** Rotate the file past this size; default 10 MiB. */
  maxFileBytes?: number;
  /** Rotated files kept (`agent.log.1` …); default 3. */
  keepFiles?: number;
}

/** A logger plus the resources behind it. */
export interface RootLogger {
  logger: Logger;
  /** Stops the rotation timer and flushes, once the log file is open. */
  close(): Promise<void>;
}

/** Never log secret-bearing fields, whatever a caller passes in. */
const REDACT = ['*.secret', '*.token', '*.psk', '*.password', 'env.*', '*.env.*', 'args.value', 'args.vars'];

/** Creates the root logger. */
export function createLogger(init: LoggerInit = {}): RootLogger {
  const level = (init.level ?? 'info') as pino.Level;
  // Each stream of a multistream has its own level, 'info' unless given: without this,
  // `log.level: debug` printed no debug line.
  const streams: pino.StreamEntry[] = [];
  if (init.stdout !== false) streams.push({ level, stream: pino.destination({ fd: 1, sync: false }) });
  let timer: NodeJS.Timeout | undefined;
  let fileDest: ReturnType<typeof pino.destination> | undefined;
  if (init.file) {
    const file = init.file;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    fileDest = pino.destination({ dest: file, sync: false, mkdir: true });
    streams.push({ level, stream: fileDest });
    const maxBytes = init.maxFileBytes ?? 10 * 1024 * 1024;
    const keep = init.keepFiles ?? 3;
    const dest = fileDest;
    // Checking once every few seconds is cheap and bounds overshoot to what the agent logs
    // in that time; pino has no built-in rotation.
    timer = setInterval(() => rotateIfLarge(file, dest, maxBytes, keep), 5000);
    timer.unref();
  }
  const logger = pino(
    {
      level,
      redact: { paths: REDACT, censor: '[redacted]' },
      base: { pid: process.pid },
    },
    pino.multistream(streams),
  );
  return {
    logger,
    async close() {
      if (timer) clearInterval(timer);
      // The file opens asynchronously (on libuv's thread pool, which a busy start can hold up):
      // pino flushes every destination synchronously at process exit, and one still opening
      // throws there ("sonic boom is not ready yet"), which turned a clean stop into exit 1.
      if (fileDest && (fileDest as unknown as { fd: number }).fd < 0)
        await Promise.race([once(fileDest, 'ready'), sleep(2000, undefined, { ref: false })]);
      try {
        fileDest?.flushSync();
      } catch {
        // a closed or not yet ready stream has nothing to flush
      }
    },
  };
}

function rotateIfLarge(file: string, dest: { reopen(): void }, maxBytes: number, keep: number): void {
  try {
    if (!existsSync(file) || statSync(file).size < maxBytes) return;
    for (let i = keep - 1; i >= 1; i--) {
      if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    }
    renameSync(file, `${file}.1`);
    dest.reopen();
  } catch {
    // Rotation is best effort; a failure here must never take the agent down.
  }
}

/** A logger that drops everything, for tests and short-lived CLI helpers. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
