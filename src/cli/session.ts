/**
 * The CLI end of an interactive session (issue 16): `plexus shell`, `exec -t`, `exec -i`. It
 * opens `shell.open` on the node as a signed command whose input is live (each frame signed as
 * it is typed), puts a local terminal in raw mode for a PTY session, streams keys, window sizes
 * (SIGWINCH) and stdin, and writes the output back. The terminal's mode is restored on every
 * way out: the session's end, an error, a signal, or `process.exit` anywhere.
 */
import { constants } from 'node:os';
import { frameQueue } from '../core/frame-queue.ts';
import type { AgentClient } from './client.ts';
import { CliError } from './errors.ts';

/** What to open. */
export interface SessionRequest {
  mode: 'pty' | 'pipe';
  user?: string;
  cmd?: string[];
}

/** The result of `shell.open`. */
interface SessionResult {
  session: string;
  exitCode: number | null;
  signal: string | null;
  reason: string;
}

/** How often a keep-alive goes out while nothing else does (the transports' idle deadline is 30 s). */
const KEEPALIVE_MS = 10_000;
/** Stdin is paused while this many input frames wait to be sent: backpressure to the local pipe. */
const MAX_QUEUED_FRAMES = 8;
/** One stdin read is cut into frames of at most this (the node's limit is 256 KiB). */
const MAX_FRAME_BYTES = 128 * 1024;

/** Runs a session on the node `client` addresses; returns the exit status to exit with. */
export async function runRemoteSession(client: AgentClient, req: SessionRequest): Promise<number> {
  const stdin = process.stdin;
  const raw = req.mode === 'pty' && stdin.isTTY === true;
  const queue = frameQueue();
  const restore = () => {
    if (raw && stdin.isTTY) stdin.setRawMode(false);
  };
  // Whatever ends this process, the terminal goes back to how it was.
  process.once('exit', restore);
  const onSignal = (sig: NodeJS.Signals) => {
    if (req.mode === 'pipe' && (sig === 'SIGINT' || sig === 'SIGTERM')) {
      queue.push({ t: 'k', s: sig.slice(3) });
      return;
    }
    restore();
    process.exit(128 + (constants.signals[sig] ?? 0));
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);

  const size = () => ({ c: process.stdout.columns || 80, r: process.stdout.rows || 24 });
  const onResize = () => queue.push({ t: 'r', ...size() });
  if (req.mode === 'pty' && process.stdout.isTTY) process.stdout.on('resize', onResize);

  let sentAt = Date.now();
  const keepAlive = setInterval(() => {
    if (Date.now() - sentAt >= KEEPALIVE_MS) queue.push({ t: 'p' });
  }, KEEPALIVE_MS / 2);
  const onData = (chunk: Buffer) => {
    sentAt = Date.now();
    for (let at = 0; at < chunk.length; at += MAX_FRAME_BYTES)
      queue.push({ t: 'd', d: chunk.subarray(at, at + MAX_FRAME_BYTES).toString('base64') });
    if (queue.size >= MAX_QUEUED_FRAMES) stdin.pause();
  };
  queue.onDrained(() => stdin.resume());
  const onEnd = () => {
    // ^D on a terminal is a byte for the remote shell; the end of a pipe is EOF for the command.
    if (req.mode === 'pipe') queue.push({ t: 'e' });
  };
  if (raw) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.once('end', onEnd);

  const { c: cols, r: rows } = size();
  try {
    const result = (await client.call(
      'shell.open',
      {
        mode: req.mode,
        ...(req.user ? { user: req.user } : {}),
        ...(req.cmd && req.cmd.length > 0 ? { cmd: req.cmd } : {}),
        ...(req.mode === 'pty' ? { cols, rows, term: process.env.TERM || 'xterm-256color' } : {}),
      },
      {
        live: queue,
        onData: (d) => {
          const f = d as { o?: string; e?: string };
          const text = f.o ?? f.e;
          if (text === undefined) return;
          const out = f.e !== undefined ? process.stderr : process.stdout;
          if (!out.write(Buffer.from(text, 'base64')))
            return new Promise((r) => out.once('drain', () => r()));
        },
      },
    )) as SessionResult;
    if (result.reason === 'idle')
      process.stderr.write('\r\nplexus: the session was closed after being idle (shell.idleTimeout)\r\n');
    if (result.exitCode !== null) return result.exitCode;
    if (result.signal) return 128 + (constants.signals[result.signal as NodeJS.Signals] ?? 0);
    throw new CliError('the session ended without an exit status');
  } finally {
    queue.close();
    clearInterval(keepAlive);
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    stdin.pause();
    process.stdout.off('resize', onResize);
    for (const s of signals) process.off(s, onSignal);
    restore();
    process.off('exit', restore);
  }
}
