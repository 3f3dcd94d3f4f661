/**
 * In-process HTTP requests: a real node:http IncomingMessage and ServerResponse, joined by a
 * socket that lives in memory, so a handler runs exactly as it would behind a port (status
 * line, headers, chunked streaming, `Connection: close`, a dropped connection) and its answer
 * is read back from the bytes it wrote. This is how route modules are tested (hono's
 * `app.request`), and nothing here listens or dials.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { http } from '../core/http-modules.ts';

/** A request's headers and body. */
export interface InProcessRequestInit {
  /**
   * Header names in any case. `content-length` is filled in for a string or byte body, and
   * `host` is `localhost` unless given.
   */
  headers?: Record<string, string>;
  /** The body: whole, or streamed chunk by chunk (a slow or endless body for timeout tests). */
  body?: string | Uint8Array | AsyncIterable<string | Uint8Array>;
  /** Aborting drops the connection (as a client going away would) and returns what had arrived. */
  signal?: AbortSignal;
}

/** A response as the client would have read it. */
export interface InProcessResponse {
  status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The body bytes, with any chunked transfer encoding removed. */
  body: Buffer;
  text(): string;
  json<T = unknown>(): T;
  /** The body as NDJSON: one parsed value per non-empty line. */
  ndjson<T = unknown>(): T[];
}

/** How a request reaches the router. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** The server's side of a connection, keeping every byte the response writes. */
class CaptureSocket extends Duplex {
  readonly written: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.written.push(Buffer.from(chunk));
    callback();
  }
  // node:http calls these on real sockets.
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}

/**
 * Runs `handler` on a request for `method path` and resolves with the response once it has
 * ended, its connection was dropped after an answer, or `init.signal` aborted it. Rejects like
 * a client would (`ECONNRESET`) when the connection was dropped before any answer.
 */
export async function requestInProcess(
  handler: RequestHandler,
  method: string,
  path: string,
  init: InProcessRequestInit = {},
): Promise<InProcessResponse> {
  const socket = new CaptureSocket();
  // A dropped connection is an answer here, not a crash.
  socket.on('error', () => {});
  const req = new http.IncomingMessage(socket as unknown as Socket);
  req.method = method.toUpperCase();
  req.url = path;
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  // A client always names the host it connects to; tests of the Host check set their own.
  const headers: Record<string, string> = { host: 'localhost' };
  for (const [name, value] of Object.entries(init.headers ?? {})) headers[name.toLowerCase()] = value;
  const { body } = init;
  if ((typeof body === 'string' || body instanceof Uint8Array) && headers['content-length'] === undefined)
    headers['content-length'] = String(Buffer.byteLength(body));
  req.headers = headers;
  req.rawHeaders = Object.entries(headers).flat();

  const res = new http.ServerResponse(req);
  res.assignSocket(socket as unknown as Socket);
  // As node:http does: a connection that closes before the body is complete aborts the request,
  // so a handler reading it stops at once instead of at its own deadline.
  socket.once('close', () => {
    if (!req.complete) req.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
  });
  const ended = new Promise<void>((resolve) => {
    res.once('finish', resolve);
    socket.once('close', resolve);
  });
  const onAbort = () => socket.destroy();
  init.signal?.addEventListener('abort', onAbort, { once: true });
  if (init.signal?.aborted) onAbort();

  void feedBody(req, body);
  try {
    await Promise.all([handler(req, res), ended]);
  } finally {
    init.signal?.removeEventListener('abort', onAbort);
    // The client is done: close the connection, which the response reports as 'close'.
    socket.destroy();
  }
  return parseResponse(Buffer.concat(socket.written));
}

/** Pushes the body into the request as the HTTP parser would, then marks it complete. */
async function feedBody(req: IncomingMessage, body: InProcessRequestInit['body']): Promise<void> {
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Uint8Array) req.push(Buffer.from(body));
    else {
      try {
        for await (const chunk of body) {
          if (req.destroyed) return;
          req.push(Buffer.from(chunk));
        }
      } catch {
        req.destroy();
        return;
      }
    }
  }
  if (req.destroyed) return;
  req.complete = true;
  req.push(null);
}

function parseResponse(raw: Buffer): InProcessResponse {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd === -1) {
    throw Object.assign(new Error('socket hang up: the connection was dropped before an answer'), {
      code: 'ECONNRESET',
    });
  }
  const [statusLine, ...lines] = raw.subarray(0, headEnd).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = raw.subarray(headEnd + 4);
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') body = dechunk(body);
  const text = () => body.toString('utf8');
  return {
    status: Number(statusLine.split(' ')[1]),
    headers,
    body,
    text,
    json: <T>() => JSON.parse(text()) as T,
    ndjson: <T>() =>
      text()
        .split('\n')
        .filter((line) => line.trim())
        .map((line) => JSON.parse(line) as T),
  };
}

/** Removes chunked transfer encoding; a stream cut off mid-chunk yields what had arrived. */
function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol === -1) break;
    const size = Number.parseInt(data.subarray(at, eol).toString('latin1').split(';')[0], 16);
    if (!size) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
