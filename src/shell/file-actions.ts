/**
 * `fs.stat`, `fs.read`, `fs.write` and `fs.mkdir`: the node's side of `plexus cp` (issue 16),
 * under the same `shell` grant as a terminal and run as the same user (file-ops.ts). A file is
 * written under a temporary name next to its destination and moved into place only once its
 * sha256 (of the bytes handed to the writing tool, which exited cleanly: file-ops.ts, finishFile)
 * matches what the sender hashed: a destination is never half-written. An interrupted write leaves the temporary file, which `--resume` continues.
 */
import { createHash } from 'node:crypto';
import { type ActionContext, defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import { MAX_SESSION_CHUNK_BYTES } from './constants.ts';
import { BadSessionFrameError, ChecksumMismatchError, SessionFrameTooLargeError } from './errors.ts';
import { readFileDirect, writeDirect } from './file-direct.ts';
import { describePath, finishFile, hashAsUser, partialName, runAsUser, toolError } from './file-ops.ts';
import { startPipes } from './session-process.ts';
import type { TransferChannels } from './transfer-channel.ts';
import {
  asUser,
  resolveSessionUser,
  SESSION_USER_RE,
  type SessionUser,
  sessionCwd,
  sessionEnv,
  type UserPolicy,
} from './users.ts';

const path = z
  .string()
  .min(1)
  .max(4096)
  .regex(/^\//, 'an absolute path')
  .refine((p) => !p.includes('\0'), 'no NUL');
const user = z.string().regex(SESSION_USER_RE, 'a user name').optional();
const SHA256_RE = /^[0-9a-f]{64}$/;

/** The file actions of `plexus cp`. */
export function fileActions(deps: { policy: UserPolicy; channels: TransferChannels }) {
  const who = (u: string | undefined, ctx: ActionContext) =>
    resolveSessionUser(u, ctx.caller.role === 'admin', deps.policy);

  return [
    defineAction({
      name: 'fs.stat',
      describe: 'describe a path (with recursive, the tree under it) as a user of this node sees it',
      access: 'shell',
      args: z.strictObject({ path, user, recursive: z.boolean().default(false) }),
      handler: async (args, ctx) => describePath(await who(args.user, ctx), args.path, args.recursive),
    }),
    defineAction({
      name: 'fs.mkdir',
      describe: 'make a directory (and its parents) as a user of this node',
      access: 'shell',
      args: z.strictObject({ path, user, mode: z.number().int().min(0).max(0o7777) }),
      handler: async (args, ctx) => {
        const u = await who(args.user, ctx);
        const r = await runAsUser(u, [
          'sh',
          '-c',
          'mkdir -p -- "$1" && chmod "$2" -- "$1"',
          'sh',
          args.path,
          args.mode.toString(8),
        ]);
        if (r.code !== 0) throw toolError(args.path, r.stderr);
        return { path: args.path };
      },
    }),
    defineAction({
      name: 'fs.read',
      describe:
        'stream a file from an offset as a user of this node; its sha256 re-read from disk at the end',
      access: 'shell',
      args: z.strictObject({
        path,
        user,
        offset: z.number().int().min(0).default(0),
        // The bytes over a one-shot binary channel (file-direct.ts), not in data frames.
        direct: z.boolean().default(false),
      }),
      handler: async (args, ctx) => {
        const u = await who(args.user, ctx);
        if (args.direct) return readFileDirect(deps.channels, u, args.path, args.offset, ctx);
        let stderr = '';
        let bytes = 0;
        const proc = await startPipes(
          toolSpec(u, ['tail', '-c', `+${args.offset + 1}`, '--', args.path]),
          async (stream, chunk) => {
            if (stream === 'e') stderr += chunk.toString().slice(0, 4096);
            else {
              bytes += chunk.length;
              await ctx.emit({ o: chunk.toString('base64') });
            }
          },
        );
        const onAbort = () => proc.kill('SIGKILL');
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        proc.endInput();
        const exit = await proc.exited.finally(() => ctx.signal.removeEventListener('abort', onAbort));
        if (exit.exitCode !== 0) throw toolError(args.path, stderr);
        const sum = await runAsUser(u, ['sha256sum', '--', args.path]);
        if (sum.code !== 0) throw toolError(args.path, sum.stderr);
        return { bytes, sha256: sum.stdout.toString().slice(0, 64) };
      },
    }),
    defineAction({
      name: 'fs.write',
      describe: 'receive a file as a user of this node: into a temporary name, checked, then renamed',
      access: 'shell',
      args: z.strictObject({
        path,
        user,
        mode: z.number().int().min(0).max(0o7777),
        mtime: z.number().min(0),
        resume: z.boolean().default(false),
        direct: z.boolean().default(false),
      }),
      handler: async (args, ctx) => {
        const u = await who(args.user, ctx);
        const part = partialName(args.path);
        let offset = 0;
        if (args.resume) {
          const have = await describePath(u, part, false).catch(() => []);
          offset = have[0]?.type === 'f' ? have[0].size : 0;
        }
        // Truncated to the resume point: a partial file is only ever the source's prefix.
        const prep = await runAsUser(u, ['truncate', '-s', String(offset), '--', part]);
        if (prep.code !== 0) throw toolError(args.path, prep.stderr);
        // The partial file's sha256 is taken as its bytes go in (finishFile says why): a
        // resumed one's prefix first.
        const written = offset > 0 ? await hashAsUser(u, part) : createHash('sha256');
        if (args.direct) {
          const got = await writeDirect(deps.channels, u, args.path, part, offset, written, ctx);
          const { mode, mtime } = args;
          if (
            (await finishFile(u, args.path, { mode, mtime, sha256: got.sha256, written: got.written })) !==
            'ok'
          )
            throw new ChecksumMismatchError(args.path);
          return { path: args.path, offset, bytes: got.bytes, sha256: got.sha256 };
        }
        let stderr = '';
        const proc = await startPipes(
          toolSpec(u, ['sh', '-c', 'exec cat >> "$1"', 'sh', part]),
          async (stream, chunk) => {
            if (stream === 'e') stderr += chunk.toString().slice(0, 4096);
          },
        );
        const onAbort = () => proc.kill('SIGKILL');
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        await ctx.emit({ ready: { offset } });
        let sha256: string | undefined;
        let received = 0;
        try {
          // Read by hand, not with for-await: leaving such a loop would close the input, and
          // with it the caller's connection, before the result is sent.
          const input = ctx.input[Symbol.asyncIterator]();
          for (;;) {
            const next = await input.next();
            if (next.done) break;
            const f = next.value as { t?: unknown; d?: unknown; sha256?: unknown };
            if (f.t === 'p') continue;
            if (f.t === 'e') {
              if (typeof f.sha256 !== 'string' || !SHA256_RE.test(f.sha256))
                throw new BadSessionFrameError('the end of a file carries its sha256');
              sha256 = f.sha256;
              break;
            }
            if (f.t !== 'd' || typeof f.d !== 'string')
              throw new BadSessionFrameError('a file is sent as data frames');
            if (f.d.length > Math.ceil(MAX_SESSION_CHUNK_BYTES / 3) * 4)
              throw new SessionFrameTooLargeError(MAX_SESSION_CHUNK_BYTES);
            const chunk = Buffer.from(f.d, 'base64');
            received += chunk.length;
            written.update(chunk);
            await proc.write(chunk);
          }
        } catch (err) {
          proc.kill('SIGKILL');
          throw err;
        } finally {
          ctx.signal.removeEventListener('abort', onAbort);
        }
        proc.endInput();
        const exit = await proc.exited;
        if (exit.exitCode !== 0) throw toolError(args.path, stderr || 'the write was interrupted');
        if (!sha256)
          throw new BadSessionFrameError('the file ended without its sha256; resume with --resume');
        const done = { mode: args.mode, mtime: args.mtime, sha256, written: written.digest('hex') };
        if ((await finishFile(u, args.path, done)) !== 'ok') throw new ChecksumMismatchError(args.path);
        return { path: args.path, offset, bytes: received, sha256 };
      },
    }),
  ];
}

/** How a file tool runs: as the session's user, in its home, with its login environment. */
function toolSpec(u: SessionUser, argv: string[]) {
  return { argv: asUser(u, argv), env: sessionEnv(u, undefined), cwd: sessionCwd(u), cols: 80, rows: 24 };
}
