/**
 * The process behind a session, in two kinds with one interface: a PTY (node-pty; `shell`,
 * `exec -t`), where output is one stream and the terminal has a size, and plain pipes
 * (`exec -i`, `cp`), where stdin can be closed (EOF) and stdout and stderr stay apart.
 * Both push back: `write` resolves when the child has taken the bytes, and output pauses while
 * the caller's transport is full.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { signalGroup } from '../core/process-group.ts';
import { MAX_OUTPUT_CHUNK_BYTES } from './constants.ts';
import { PtyUnavailableError, SessionSpawnError } from './errors.ts';

/** How a session process ended. */
export interface ProcessExit {
  exitCode: number | null;
  signal: string | null;
}

/** Output of a session process: `o` (stdout, or the terminal) or `e` (stderr). */
export type OutputSink = (stream: 'o' | 'e', chunk: Buffer) => Promise<void>;

/** A running session process. */
export interface SessionProcess {
  readonly pid: number;
  /** Writes to stdin (or the terminal); resolves once the child can take more. */
  write(chunk: Buffer): Promise<void>;
  /** Closes stdin (pipes); on a terminal, the caller sends ^D itself. */
  endInput(): void;
  /** New terminal size (a PTY sends SIGWINCH to its foreground group). */
  resize(cols: number, rows: number): void;
  /** Signals the process group. */
  kill(signal: NodeJS.Signals): void;
  /** Resolves once the process has exited and its output is all delivered. */
  readonly exited: Promise<ProcessExit>;
}

/** What to start. */
export interface ProcessSpec {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  cols: number;
  rows: number;
}

/** The device every PTY comes from; without it (a container without /dev/pts), no terminal. */
export const PTMX = '/dev/ptmx';

/** Starts `spec` on a new PTY. */
export async function startPty(spec: ProcessSpec, out: OutputSink, ptmx = PTMX): Promise<SessionProcess> {
  try {
    accessSync(ptmx, fsConstants.R_OK | fsConstants.W_OK);
  } catch (err) {
    throw new PtyUnavailableError(
      `${ptmx}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  // Loaded on first use: agents that never open a terminal never load the addon.
  const mod = await import('node-pty');
  // A CommonJS package: its exports arrive as the default export when imported from ESM.
  const pty = (mod as unknown as { default?: typeof mod }).default ?? mod;
  let term: import('node-pty').IPty;
  try {
    term = pty.spawn(spec.argv[0], spec.argv.slice(1), {
      name: spec.env.TERM ?? 'xterm-256color',
      cols: spec.cols,
      rows: spec.rows,
      cwd: spec.cwd,
      env: spec.env,
      encoding: null,
    });
  } catch (err) {
    const why = (err as Error).message;
    if (/openpty|ptsname|grantpt|unlockpt|posix_openpt/.test(why)) throw new PtyUnavailableError(why);
    throw new SessionSpawnError(spec.argv[0], why);
  }
  let chain = Promise.resolve();
  term.onData((data) => {
    const buf = data as unknown as Buffer;
    // Hold the terminal while the caller's transport is full: the shell blocks on its writes.
    term.pause();
    chain = chain
      .then(() => sendChunks(out, 'o', buf))
      .catch(() => outputLost(term.pid))
      .finally(() => term.resume());
  });
  const exited = new Promise<ProcessExit>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      const name = signal ? signalName(signal) : null;
      chain.then(() => resolve({ exitCode: name ? null : exitCode, signal: name }));
    });
  });
  return {
    pid: term.pid,
    write: async (chunk) => {
      term.write(chunk as unknown as string);
    },
    endInput: () => {},
    resize: (cols, rows) => term.resize(cols, rows),
    kill: (signal) => signalGroup(term.pid, signal),
    exited,
  };
}

/** Starts `spec` with pipes for stdin, stdout and stderr, in a process group of its own. */
export function startPipes(spec: ProcessSpec, out: OutputSink): Promise<SessionProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(spec.argv[0], spec.argv.slice(1), {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let pending = 2;
    let onDrained: () => void = () => {};
    const drained = new Promise<void>((r) => {
      onDrained = r;
    });
    for (const [name, stream] of [
      ['o', child.stdout],
      ['e', child.stderr],
    ] as const) {
      let chain = Promise.resolve();
      stream.on('data', (chunk: Buffer) => {
        stream.pause();
        chain = chain
          .then(() => sendChunks(out, name, chunk))
          .catch(() => outputLost(child.pid!))
          .finally(() => stream.resume());
      });
      stream.once('close', () => {
        chain.then(() => {
          if (--pending === 0) onDrained();
        });
      });
    }
    // EPIPE when the child exits before reading all of stdin is its answer, not ours to report.
    child.stdin.on('error', () => {});
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(new SessionSpawnError(spec.argv[0], err.message, err.code === 'ENOENT')),
    );
    child.once('spawn', () => {
      const exited = new Promise<ProcessExit>((res) =>
        child.once('close', (code, signal) => drained.then(() => res({ exitCode: code, signal }))),
      );
      resolve({
        pid: child.pid!,
        write: (chunk) =>
          new Promise((res) => {
            if (child.stdin.destroyed || child.stdin.writableEnded) return res();
            if (child.stdin.write(chunk)) res();
            else {
              const done = () => {
                child.stdin.off('close', done);
                child.stdin.off('drain', done);
                res();
              };
              child.stdin.once('drain', done);
              child.stdin.once('close', done);
            }
          }),
        endInput: () => child.stdin.end(),
        resize: () => {},
        kill: (signal) => signalGroup(child.pid!, signal),
        exited,
      });
    });
  });
}

async function sendChunks(out: OutputSink, stream: 'o' | 'e', buf: Buffer): Promise<void> {
  for (let at = 0; at < buf.length; at += MAX_OUTPUT_CHUNK_BYTES)
    await out(stream, buf.subarray(at, at + MAX_OUTPUT_CHUNK_BYTES));
}

/**
 * The caller's transport broke (the CLI was killed, the stream reset): the output has nowhere
 * to go, so the session hangs up as a terminal whose line dropped would. It must never reject
 * unhandled: that ended the whole agent.
 */
function outputLost(pid: number): void {
  signalGroup(pid, 'SIGHUP');
}

function signalName(n: number): string {
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === n) return name;
  return `SIG${n}`;
}
