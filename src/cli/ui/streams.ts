/**
 * The dashboard's long-running calls (docs/ui.md): live logs and terminals, and deploys of an
 * uploaded bundle. Each answers NDJSON lines on one response (`{data}` as they come, then
 * `{result}` or `{error}`), which the page reads with fetch's stream (a header can carry the
 * secret there, unlike EventSource). A terminal's keys come back on separate POSTs to
 * /api/input naming the session; every frame is signed by the operator key as the CLI's are
 * (remote-client.ts), so the node checks each keystroke.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { frameQueue } from '../../core/frame-queue.ts';
import type { AgentClient } from '../client.ts';
import { uploadFrames } from '../upload-frames.ts';
import { errorBody } from './http.ts';

/** Actions the stream route runs: what the pages stream, nothing more. */
export const STREAM_ACTIONS = new Set(['apps.logs', 'shell.open']);
/** Most terminals one dashboard keeps open at once. */
const MAX_SESSIONS = 16;
/** An uploaded bundle is cut into frames of this size (the node takes at most 1 MiB a line). */
const UPLOAD_CHUNK_BYTES = 256 * 1024;
/** The largest bundle the page may upload (the CLI's limit is 512 MiB; a browser holds it in memory). */
export const MAX_UPLOAD_BYTES = 256 * 1024 * 1024;
/** The keys a terminal input frame may carry, and the most bytes in one (the node's limit is 256 KiB). */
const INPUT_KINDS = new Set(['d', 'r', 'k', 'p']);
const MAX_INPUT_DATA = 256 * 1024;

type Queue = ReturnType<typeof frameQueue>;

/** Open terminals by session handle. */
export class Sessions {
  readonly #open = new Map<string, Queue>();

  /** Runs `action` on `client`, writing its frames to `res` as NDJSON; a terminal gets a handle first. */
  async run(
    client: AgentClient,
    action: string,
    args: Record<string, unknown>,
    res: ServerResponse,
    input?: AsyncIterable<unknown>,
  ): Promise<void> {
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    let handle: string | undefined;
    let live: Queue | undefined;
    if (action === 'shell.open') {
      if (this.#open.size >= MAX_SESSIONS) {
        res.end(
          `${JSON.stringify(errorBody('UI_TOO_MANY_SESSIONS', `at most ${MAX_SESSIONS} terminals at once`))}\n`,
        );
        return;
      }
      handle = randomBytes(18).toString('base64url');
      live = frameQueue();
      this.#open.set(handle, live);
      res.write(`${JSON.stringify({ session: handle })}\n`);
      // Transports drop input idle for 30 s: a keep-alive while nobody types (docs/shell.md).
      const keep = setInterval(() => live!.push({ t: 'p' }), 10_000);
      abort.signal.addEventListener('abort', () => clearInterval(keep), { once: true });
    }
    try {
      const result = await client.call(action, args, {
        signal: abort.signal,
        live,
        input,
        onData: (data) => {
          if (!res.write(`${JSON.stringify({ data })}\n`))
            return new Promise<void>((r) => res.once('drain', () => r()));
        },
      });
      res.end(`${JSON.stringify({ result })}\n`);
    } catch (err) {
      if (!res.writableEnded) res.end(`${JSON.stringify(errorBody(codeOf(err), (err as Error).message))}\n`);
    } finally {
      live?.close();
      if (handle) this.#open.delete(handle);
    }
  }

  /** Queues a terminal's input frames; false when no such session is open. */
  input(handle: string, frames: unknown[]): string | undefined {
    const q = this.#open.get(handle);
    if (!q) return 'no such terminal session (it ended, or another dashboard opened it)';
    for (const f of frames) {
      const bad = badInput(f);
      if (bad) return bad;
    }
    for (const f of frames) q.push(f as Record<string, unknown>);
    return undefined;
  }

  /** Ends every terminal (the server is closing). */
  closeAll(): void {
    for (const q of this.#open.values()) q.close();
    this.#open.clear();
  }
}

/** Why a terminal input frame is refused, or undefined. */
function badInput(f: unknown): string | undefined {
  if (typeof f !== 'object' || f === null || Array.isArray(f)) return 'an input frame is an object';
  const frame = f as Record<string, unknown>;
  if (!INPUT_KINDS.has(frame.t as string))
    return `input frame kind '${String(frame.t)}' is not one of d, r, k, p`;
  if (frame.t === 'd' && (typeof frame.d !== 'string' || frame.d.length > (MAX_INPUT_DATA * 4) / 3 + 4))
    return 'terminal data is a base64 string of at most 256 KiB';
  if (frame.t === 'r' && !(Number.isInteger(frame.c) && Number.isInteger(frame.r)))
    return 'a resize gives integer columns (c) and rows (r)';
  return undefined;
}

/** Yields an uploaded bundle as the deploy's input frames, failing past MAX_UPLOAD_BYTES. */
export function bundleFrames(req: IncomingMessage): AsyncGenerator<unknown> {
  return uploadFrames(req as AsyncIterable<Buffer>, UPLOAD_CHUNK_BYTES, {
    maxBytes: MAX_UPLOAD_BYTES,
    tooLarge: () => new Error(`the bundle is over ${MAX_UPLOAD_BYTES / 1024 / 1024} MiB`),
  });
}

/** A stable code for any failure: the agent's own, or the CLI error's. */
export function codeOf(err: unknown): string {
  const e = err as { body?: { code?: string }; code?: unknown };
  if (typeof e?.body?.code === 'string') return e.body.code;
  if (typeof e?.code === 'string') return e.code;
  return 'UI_UPSTREAM';
}
