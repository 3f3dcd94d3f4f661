/**
 * The control socket DATA/plexus.sock (mode 0600): the local CLI's way into the agent. The file
 * permission is the authority, so local callers act as admin. Protocol: the client writes one
 * JSON line `{action, args}`, may write further JSON lines as input, and reads NDJSON frames
 * until a `result` or `error` frame.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { CommandService } from '../commands/service.ts';
import type { ActionRegistry, Caller } from '../core/actions.ts';
import { toErrorBody } from '../core/errors.ts';
import { type ActionRequest, MAX_LINE_BYTES } from '../core/frames.ts';
import type { Startable } from '../core/lifecycle.ts';
import { parseJsonLine, readLines, writeJsonLine } from '../core/ndjson.ts';
import type { Logger } from '../logging/index.ts';
import { AgentRunningError, BadRequestError } from './errors.ts';

/** Options of the control socket. */
export interface ControlSocketInit {
  /** The socket file, DATA/plexus.sock; created with mode 0600. */
  path: string;
}

/** Dependencies of the control socket. */
export interface ControlSocketComponents {
  actions: ActionRegistry;
  logger: Logger;
  /** Signed commands (`{"envelope": …}` as the first line) go here, as over HTTP. */
  commands?: Pick<CommandService, 'handle'>;
}

/** The control socket: listens from `start()` until `stop()`. */
export interface ControlSocket extends Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
}

const LOCAL_CALLER: Caller = { kind: 'local', kid: 'local', role: 'admin' };

/** Builds the control socket server; no I/O until `start()`. */
export function createControlSocket(
  init: ControlSocketInit,
  components: ControlSocketComponents,
): ControlSocket {
  const { path } = init;
  const { actions, logger } = components;
  const sockets = new Set<Socket>();
  let server: Server | undefined;

  async function handle(socket: Socket): Promise<void> {
    const abort = new AbortController();
    socket.on('close', () => abort.abort());
    socket.on('error', () => abort.abort());
    // Not destroyed when the action stops reading: see `finally`.
    const lines = readLines(socket.iterator({ destroyOnReturn: false }), MAX_LINE_BYTES);
    try {
      const first = await lines.next();
      if (first.done) return;
      const req = parseJsonLine(first.value) as ActionRequest & { envelope?: unknown };
      if (components.commands && typeof req === 'object' && req !== null && 'envelope' in req) {
        const input = (async function* () {
          for await (const line of lines) yield parseJsonLine(line);
        })();
        await components.commands.handle(req.envelope, input, (frame) => writeJsonLine(socket, frame), {
          via: 'socket',
          signal: abort.signal,
        });
        return;
      }
      if (typeof req !== 'object' || req === null || typeof req.action !== 'string') {
        throw new BadRequestError('expected {"action": "...", "args": {...}}');
      }
      const input = (async function* () {
        for await (const line of lines) yield parseJsonLine(line);
      })();
      const frame = await actions.run(req.action, req.args, {
        caller: LOCAL_CALLER,
        signal: abort.signal,
        emit: (data) => writeJsonLine(socket, { type: 'data', data }),
        input,
      });
      await writeJsonLine(socket, frame);
    } catch (err) {
      await writeJsonLine(socket, { type: 'error', error: toErrorBody(err) });
    } finally {
      socket.end();
      drainAfterAnswer(socket, lines);
    }
  }

  return {
    async start() {
      // A stale socket file from a killed agent would make listen() fail with EADDRINUSE.
      // If something answers on it, another agent owns this data dir.
      if (existsSync(path)) {
        if (await isAlive(path)) {
          throw new AgentRunningError(path);
        }
        unlinkSync(path);
      }
      const listening = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        handle(socket).catch((err) => logger.warn({ err }, 'control socket connection failed'));
      });
      await new Promise<void>((resolve, reject) => {
        listening.once('error', reject);
        // Restrictive umask while binding so the socket never exists with a wider mode.
        const old = process.umask(0o177);
        try {
          listening.listen(path, () => resolve());
        } finally {
          process.umask(old);
        }
      });
      server = listening;
      chmodSync(path, 0o600);
      logger.info({ path }, 'control socket listening');
    },
    async stop() {
      // Not started (or failed to): the socket file, if any, is another agent's.
      if (!server) return;
      for (const s of sockets) s.destroy();
      const closing = server;
      server = undefined;
      await new Promise<void>((resolve) => closing.close(() => resolve()));
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    },
  };
}

/**
 * An action may answer (a refusal, say) while the client is still sending input. Closing at once
 * would reset the connection, and the client would see EPIPE instead of the answer, so the rest of
 * its input is read and dropped until it hangs up, for at most DRAIN_MS.
 */
function drainAfterAnswer(socket: Socket, lines: AsyncGenerator<string>): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), DRAIN_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  // Ends the line reader's hold on the socket (its 'readable' listener), then lets data flow away.
  lines.return(undefined).then(
    () => socket.resume(),
    () => socket.destroy(),
  );
}

const DRAIN_MS = 10_000;

function isAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
