/**
 * The shell subsystem's actions: `shell.open` (a session: `plexus shell`, `exec -i/-t`),
 * `shell.sessions` (the session audit) and `shell.recording` (a recording, for `plexus audit
 * play`). `shell.open` needs the `shell` access class: a grant with `shell: true`, or an admin.
 */
import { createReadStream, existsSync } from 'node:fs';
import { type ActionContext, defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import type { Logger } from '../logging/index.ts';
import { MAX_TERMINAL_CELLS } from './constants.ts';
import { SessionLimitError, UnknownSessionError } from './errors.ts';
import {
  RECORDING_ID_RE,
  type RecorderInit,
  type Recording,
  recordingPath,
  startRecording,
} from './recorder.ts';
import { runSession } from './session.ts';
import type { SessionLog } from './session-log.ts';
import { type OutputSink, PTMX, type SessionProcess, startPipes, startPty } from './session-process.ts';
import {
  asUser,
  resolveSessionUser,
  SESSION_USER_RE,
  sessionArgv,
  sessionCwd,
  sessionEnv,
  type UserPolicy,
} from './users.ts';

/** What the actions need. */
export interface ShellActionDeps {
  log: SessionLog;
  logger: Logger;
  policy: UserPolicy;
  idleTimeoutMs: number;
  maxSessions: number;
  /** Recording options when `shell.record` is on. */
  record?: RecorderInit;
  /** Where recordings are read from (also when recording is off now). */
  recordingsDir: string;
  /** Live sessions, so that the agent can end them when it stops. */
  live: Set<SessionProcess>;
  /** The PTY device (tests point it elsewhere). */
  ptmx?: string;
}

const cell = z.number().int().min(1).max(MAX_TERMINAL_CELLS);

/** Arguments of shell.open. */
export const shellOpenArgs = z.strictObject({
  /** `pty` for a terminal (shell, exec -t), `pipe` for streamed stdin without one (exec -i). */
  mode: z.enum(['pty', 'pipe']).default('pty'),
  user: z.string().regex(SESSION_USER_RE, 'a user name').optional(),
  /** The command and its arguments; the user's login shell when absent. */
  cmd: z
    .array(z.string().max(128 * 1024))
    .max(4096)
    .optional(),
  cols: cell.default(80),
  rows: cell.default(24),
  term: z
    .string()
    .regex(/^[A-Za-z0-9._+-]{1,64}$/)
    .optional(),
});

/** The actions of interactive sessions. */
export function shellActions(deps: ShellActionDeps) {
  const open = async (args: z.infer<typeof shellOpenArgs>, ctx: ActionContext) => {
    if (deps.live.size >= deps.maxSessions) throw new SessionLimitError(deps.maxSessions);
    const id = ctx.commandId ?? `local-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
    const user = await resolveSessionUser(args.user, ctx.caller.role === 'admin', deps.policy);
    const argv = sessionArgv(user, args.cmd);
    const spec = {
      argv: asUser(user, argv),
      env: sessionEnv(user, args.mode === 'pty' ? (args.term ?? 'xterm-256color') : undefined),
      cwd: sessionCwd(user),
      cols: args.cols,
      rows: args.rows,
    };
    let recording: Recording | undefined;
    if (deps.record && args.mode === 'pty')
      recording = startRecording(deps.record, id, { ...args, command: argv.join(' ') });
    const emitted = { bytesOut: 0 };
    const out: OutputSink = async (stream, chunk) => {
      emitted.bytesOut += chunk.length;
      recording?.output(chunk);
      await ctx.emit({ [stream]: chunk.toString('base64') });
    };
    let proc: SessionProcess;
    try {
      proc = args.mode === 'pty' ? await startPty(spec, out, deps.ptmx ?? PTMX) : await startPipes(spec, out);
    } catch (err) {
      recording?.close();
      throw err;
    }
    deps.live.add(proc);
    deps.log.begin({
      id,
      kid: ctx.caller.kid,
      user: user.name,
      mode: args.mode,
      command: argv.join(' '),
      recorded: !!recording,
    });
    deps.logger.info(
      { session: id, kid: ctx.caller.kid, user: user.name, mode: args.mode },
      'session started',
    );
    try {
      await ctx.emit({ ready: { session: id, user: user.name } });
      const outcome = await runSession(
        proc,
        ctx,
        { mode: args.mode, idleTimeoutMs: deps.idleTimeoutMs, recording },
        emitted,
      );
      deps.log.end(id, outcome);
      deps.logger.info(
        { session: id, exitCode: outcome.exitCode, signal: outcome.signal, reason: outcome.reason },
        'session ended',
      );
      if (outcome.error) throw outcome.error;
      return { session: id, exitCode: outcome.exitCode, signal: outcome.signal, reason: outcome.reason };
    } finally {
      deps.live.delete(proc);
      recording?.close();
    }
  };

  return [
    defineAction({
      name: 'shell.open',
      describe: 'open an interactive session (a terminal, or streamed stdin) as a user of this node',
      access: 'shell',
      args: shellOpenArgs,
      handler: open,
    }),
    defineAction({
      name: 'shell.sessions',
      describe: 'the sessions run on this node: who, as whom, when, how they ended, bytes',
      access: 'admin',
      args: z.strictObject({
        limit: z.number().int().min(1).max(10_000).default(50),
        id: z.string().regex(RECORDING_ID_RE).optional(),
      }),
      handler: async (args) => deps.log.list(args),
    }),
    defineAction({
      name: 'shell.recording',
      describe: "a session's asciicast recording, streamed line by line",
      access: 'admin',
      args: z.strictObject({ id: z.string().regex(RECORDING_ID_RE) }),
      handler: async (args, ctx) => {
        const file = recordingPath(deps.recordingsDir, args.id);
        if (!existsSync(file)) throw new UnknownSessionError(args.id, 'recording');
        let lines = 0;
        let pending = '';
        for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 64 * 1024 })) {
          pending += chunk;
          const cut = pending.lastIndexOf('\n');
          if (cut < 0) continue;
          const batch = pending.slice(0, cut);
          pending = pending.slice(cut + 1);
          await ctx.emit(batch);
          lines += batch.split('\n').length;
        }
        if (pending) await ctx.emit(pending);
        return { lines };
      },
    }),
  ];
}
