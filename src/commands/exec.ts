/**
 * `node.exec`: runs a command on this node for `plexus exec NODE -- CMD ARGS…`, streaming stdout
 * and stderr as data frames `{stream, data}` and returning `{exitCode, signal, timedOut,
 * truncated}`. No shell: the argv runs as given. The child gets its own process group so a
 * timeout, the output limit or a vanished caller kills everything it started.
 */
import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import {
  EXEC_DEFAULT_MAX_OUTPUT_BYTES,
  EXEC_DEFAULT_TIMEOUT_S,
  EXEC_MAX_OUTPUT_BYTES,
  EXEC_MAX_TIMEOUT_S,
} from './constants.ts';
import { ExecFailedError, ExecNotFoundError } from './errors.ts';

/** Arguments of node.exec. */
export const execArgsSchema = z.strictObject({
  cmd: z.string().min(1).max(4096),
  args: z
    .array(z.string().max(128 * 1024))
    .max(4096)
    .default([]),
  timeoutS: z.number().int().min(1).max(EXEC_MAX_TIMEOUT_S).default(EXEC_DEFAULT_TIMEOUT_S),
  maxOutputBytes: z.number().int().min(1).max(EXEC_MAX_OUTPUT_BYTES).default(EXEC_DEFAULT_MAX_OUTPUT_BYTES),
  cwd: z.string().max(4096).optional(),
});

/** The node.exec action. */
export function execAction() {
  return defineAction({
    name: 'node.exec',
    describe: 'run a command on this node (stdout/stderr streamed, exit code returned)',
    access: 'exec',
    args: execArgsSchema,
    handler: (args, ctx) =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        const child = spawn(args.cmd, args.args, {
          cwd: args.cwd,
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
        let output = 0;
        let timedOut = false;
        let truncated = false;
        let chain = Promise.resolve();
        const killGroup = () => {
          try {
            if (child.pid) process.kill(-child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        };
        const timer = setTimeout(() => {
          timedOut = true;
          killGroup();
        }, args.timeoutS * 1000);
        const onAbort = () => killGroup();
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        for (const name of ['stdout', 'stderr'] as const) {
          const stream = child[name]!;
          const decoder = new StringDecoder('utf8');
          stream.on('data', (chunk: Buffer) => {
            if (truncated) return;
            let piece = chunk;
            if (output + chunk.length > args.maxOutputBytes) {
              piece = chunk.subarray(0, args.maxOutputBytes - output);
              truncated = true;
              killGroup();
            }
            output += piece.length;
            const text = decoder.write(piece);
            if (!text) return;
            // Pause while the caller's transport is full: backpressure end to end.
            stream.pause();
            chain = chain.then(() => ctx.emit({ stream: name, data: text })).finally(() => stream.resume());
          });
          stream.on('end', () => {
            const rest = decoder.end();
            if (rest) chain = chain.then(() => ctx.emit({ stream: name, data: rest }));
          });
        }
        child.once('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          ctx.signal.removeEventListener('abort', onAbort);
          reject(
            err.code === 'ENOENT'
              ? new ExecNotFoundError(args.cmd)
              : new ExecFailedError(args.cmd, err.message),
          );
        });
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          ctx.signal.removeEventListener('abort', onAbort);
          chain.then(
            () =>
              resolve({
                exitCode: code,
                signal,
                timedOut,
                truncated,
                durationMs: Date.now() - started,
              }),
            reject,
          );
        });
      }),
  });
}
