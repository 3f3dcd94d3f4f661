/**
 * One interactive session, from its signed input to its exit status. The caller's input frames
 * (each already checked against the operator's signature by the command service) are
 * `{t:'d', d: base64}` bytes for stdin or the terminal, `{t:'r', c, r}` a new terminal size,
 * `{t:'e'}` the end of stdin, `{t:'k', s}` a signal (INT, TERM, HUP, QUIT) and `{t:'p'}` a
 * keep-alive. Output goes back as data frames `{o: base64}` (stdout, or the terminal) and
 * `{e: base64}` (stderr), after a first `{ready: {session, user}}`. The result is
 * `{session, exitCode, signal, reason}`.
 */
import type { ActionContext } from '../core/actions.ts';
import { KILL_GRACE_MS, MAX_SESSION_CHUNK_BYTES, MAX_TERMINAL_CELLS } from './constants.ts';
import { BadSessionFrameError, SessionFrameTooLargeError } from './errors.ts';
import type { Recording } from './recorder.ts';
import type { ProcessExit, SessionProcess } from './session-process.ts';

/** How a session ended, as its result frame and its audit row say. */
export interface SessionOutcome extends ProcessExit {
  reason: 'exit' | 'idle' | 'caller-left' | 'input-refused';
  bytesIn: number;
  bytesOut: number;
  /** Why the input was refused, when it was. */
  error?: Error;
}

/** What the session loop needs besides the process. */
export interface SessionLoopInit {
  mode: 'pty' | 'pipe';
  idleTimeoutMs: number;
  recording?: Recording;
}

const SIGNALS: Record<string, NodeJS.Signals> = {
  INT: 'SIGINT',
  TERM: 'SIGTERM',
  HUP: 'SIGHUP',
  QUIT: 'SIGQUIT',
};
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Checks a terminal size from the caller. */
export function checkSize(cols: unknown, rows: unknown): { cols: number; rows: number } {
  const ok = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= MAX_TERMINAL_CELLS;
  if (!ok(cols) || !ok(rows))
    throw new BadSessionFrameError(`a terminal size is 1..${MAX_TERMINAL_CELLS} columns and rows`);
  return { cols: cols as number, rows: rows as number };
}

/** Decodes a data frame's bytes, within the chunk limit. */
function decodeChunk(d: unknown): Buffer {
  // base64 of MAX bytes is 4/3 as long; checked before decoding, so a huge string costs nothing.
  if (typeof d !== 'string' || d.length > Math.ceil(MAX_SESSION_CHUNK_BYTES / 3) * 4) {
    if (typeof d === 'string') throw new SessionFrameTooLargeError(MAX_SESSION_CHUNK_BYTES);
    throw new BadSessionFrameError('a data frame carries base64 in `d`');
  }
  if (!B64_RE.test(d)) throw new BadSessionFrameError('a data frame carries base64 in `d`');
  return Buffer.from(d, 'base64');
}

/**
 * Runs the session: pumps input into `proc`, output out through `ctx.emit`, and resolves when
 * the process has exited. The process is hung up when the caller leaves or stays idle past the
 * timeout, and killed outright when its input is refused.
 */
export async function runSession(
  proc: SessionProcess,
  ctx: Pick<ActionContext, 'input' | 'signal'>,
  init: SessionLoopInit,
  emitted: { bytesOut: number },
): Promise<SessionOutcome> {
  let bytesIn = 0;
  let reason: SessionOutcome['reason'] = 'exit';
  let error: Error | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  let ended = false;
  const hangUp = (why: SessionOutcome['reason'], signal: NodeJS.Signals = 'SIGHUP') => {
    if (ended) return;
    if (reason === 'exit') reason = why;
    proc.kill(signal);
    // A process that ignores SIGHUP does not outlive its session.
    setTimeout(() => proc.kill('SIGKILL'), KILL_GRACE_MS).unref();
  };
  let lastOut = emitted.bytesOut;
  const armIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      // Output counts as activity too (a long build printing away is not idle).
      if (emitted.bytesOut !== lastOut) {
        lastOut = emitted.bytesOut;
        return armIdle();
      }
      hangUp('idle');
    }, init.idleTimeoutMs);
    idleTimer.unref();
  };
  armIdle();
  const onAbort = () => hangUp('caller-left');
  ctx.signal.addEventListener('abort', onAbort, { once: true });

  const pump = (async () => {
    for await (const raw of ctx.input) {
      const f = raw as { t?: unknown; d?: unknown; c?: unknown; r?: unknown; s?: unknown };
      switch (f.t) {
        case 'd': {
          const chunk = decodeChunk(f.d);
          bytesIn += chunk.length;
          armIdle();
          await proc.write(chunk);
          break;
        }
        case 'r': {
          const { cols, rows } = checkSize(f.c, f.r);
          if (init.mode === 'pty') {
            proc.resize(cols, rows);
            init.recording?.resize(cols, rows);
          }
          armIdle();
          break;
        }
        case 'e':
          proc.endInput();
          break;
        case 'k': {
          const signal = SIGNALS[String(f.s)];
          if (!signal)
            throw new BadSessionFrameError(
              `signal ${String(f.s).slice(0, 16)} is not one of ${Object.keys(SIGNALS).join(', ')}`,
            );
          proc.kill(signal);
          break;
        }
        case 'p':
          break;
        default:
          throw new BadSessionFrameError(`unknown frame type ${JSON.stringify(String(f.t).slice(0, 16))}`);
      }
    }
    // The caller closed its side: for pipes that is EOF; a terminal has no caller left to serve.
    if (init.mode === 'pipe') proc.endInput();
    else hangUp('caller-left');
  })().catch((err: Error) => {
    error = err;
    hangUp('input-refused', 'SIGKILL');
  });
  void pump;
  try {
    const exit = await proc.exited;
    return { ...exit, reason, bytesIn, bytesOut: emitted.bytesOut, error };
  } finally {
    ended = true;
    clearTimeout(idleTimer);
    ctx.signal.removeEventListener('abort', onAbort);
  }
}
