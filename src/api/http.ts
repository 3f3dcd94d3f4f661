/**
 * The HTTP API (default 127.0.0.1:7071): a small router on node:http. Route modules register
 * handlers per resource; this file owns status codes, body limits, timeouts and the error
 * shape `{error: {code, message}}`. Domain errors map by `kind`; anything else is a logged 500.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ErrorKind, isPlexusError, PlexusError } from '../core/errors.ts';
import { http } from '../core/http-modules.ts';
import type { Logger } from '../logging/index.ts';

/** HTTP status for each error kind (only src/api knows about HTTP). */
export const STATUS_BY_KIND: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  denied: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unavailable: 503,
  internal: 500,
};

/** A request as handlers see it. */
export interface ApiRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Path parameters from `:name` segments. */
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The raw request, for streaming bodies (uploads). */
  raw: IncomingMessage;
  /** Reads the whole body up to `maxBytes` (default: the server's limit). */
  body(maxBytes?: number): Promise<Buffer>;
  /** Reads and parses a JSON body. */
  json<T = unknown>(maxBytes?: number): Promise<T>;
}

/** A route handler: return a value to send it as JSON (200), or write to `res` yourself. */
export type RouteHandler = (req: ApiRequest, res: ServerResponse) => Promise<unknown> | unknown;

interface Route {
  method: string;
  parts: string[];
  handler: RouteHandler;
}

/** Options of the HTTP server. */
export interface HttpApiInit {
  /** `HOST:PORT`. */
  listen: string;
  /** Default body limit in bytes. */
  maxBodyBytes: number;
  /** A request body must arrive within this time (slow-loris guard); default 30 s. */
  bodyTimeoutMs?: number;
}

/** The HTTP API server. */
export class HttpApi {
  readonly #routes: Route[] = [];
  readonly #init: HttpApiInit;
  readonly #logger: Logger;
  #server: Server | undefined;

  constructor(init: HttpApiInit, components: { logger: Logger }) {
    this.#init = init;
    this.#logger = components.logger;
  }

  /** Registers a route; `path` segments starting with `:` are parameters. */
  route(method: string, path: string, handler: RouteHandler): void {
    this.#routes.push({ method: method.toUpperCase(), parts: path.split('/').filter(Boolean), handler });
  }

  /** The bound address (after start). */
  get address(): AddressInfo | undefined {
    return (this.#server?.address() as AddressInfo | null) ?? undefined;
  }

  /** Handles one request (also used by in-process tests through `inject`). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const segs = url.pathname.split('/').filter(Boolean);
    let match: { route: Route; params: Record<string, string> } | undefined;
    let pathMatched = false;
    for (const route of this.#routes) {
      const params = matchPath(route.parts, segs);
      if (!params) continue;
      pathMatched = true;
      if (route.method === req.method) {
        match = { route, params };
        break;
      }
    }
    try {
      if (!match) {
        throw pathMatched
          ? new PlexusError(
              'METHOD_NOT_ALLOWED',
              `${req.method} is not supported on ${url.pathname}`,
              'invalid',
            )
          : new PlexusError('NOT_FOUND', `no route ${url.pathname}`, 'not_found');
      }
      const apiReq = this.#wrap(req, url, match.params);
      const result = await match.route.handler(apiReq, res);
      if (!res.headersSent && !res.writableEnded) sendJson(res, 200, result ?? {});
    } catch (err) {
      this.#sendError(res, err, req);
    }
  }

  #wrap(req: IncomingMessage, url: URL, params: Record<string, string>): ApiRequest {
    const readBody = (maxBytes = this.#init.maxBodyBytes) =>
      readLimited(req, maxBytes, this.#init.bodyTimeoutMs ?? 30_000);
    return {
      method: req.method ?? 'GET',
      path: url.pathname,
      params,
      query: url.searchParams,
      headers: req.headers,
      raw: req,
      body: readBody,
      async json<T>(maxBytes?: number) {
        const buf = await readBody(maxBytes);
        try {
          return JSON.parse(buf.toString('utf8')) as T;
        } catch {
          throw new PlexusError('BAD_JSON', 'request body is not valid JSON', 'invalid');
        }
      },
    };
  }

  #sendError(res: ServerResponse, err: unknown, req: IncomingMessage): void {
    let status = 500;
    let body = { code: 'INTERNAL', message: 'internal error; see the agent log' };
    if (isPlexusError(err)) {
      status = STATUS_BY_KIND[err.kind] ?? 400;
      body = { code: err.code, message: err.message };
    } else {
      this.#logger.error({ err, method: req.method, url: req.url }, 'request failed unexpectedly');
    }
    if (res.headersSent) {
      // A streaming response already started: end it; the stream's own error frame is the report.
      res.end();
      return;
    }
    sendJson(res, status, { error: body });
  }

  /** Starts listening. */
  async start(): Promise<void> {
    const { host, port } = parseHostPort(this.#init.listen);
    const server = http.createServer((req, res) => {
      void this.handle(req, res);
    });
    // Bound header and idle times so slow or stuck clients cannot hold sockets forever.
    server.headersTimeout = 10_000;
    server.requestTimeout = 0; // long streams (logs -f, exec) are legitimate; bodies have their own timeout
    server.keepAliveTimeout = 5_000;
    server.maxHeadersCount = 100;
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'EADDRINUSE'
            ? new PlexusError(
                'PORT_IN_USE',
                `HTTP API address ${this.#init.listen} is in use; set api.listen or --api`,
                'conflict',
              )
            : err,
        ),
      );
      server.listen(port, host, () => resolve());
    });
    this.#logger.info({ listen: this.#init.listen }, 'HTTP API listening');
  }

  /** Stops listening and closes open connections. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Sends a JSON response. */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Splits `HOST:PORT` (IPv6 in brackets). */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535)
    throw new PlexusError('BAD_ADDRESS', `'${text}' is not HOST:PORT`, 'invalid');
  return { host: m[1], port: Number(m[2]) };
}

function matchPath(parts: string[], segs: string[]): Record<string, string> | undefined {
  if (parts.length !== segs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    if (parts[i].startsWith(':')) {
      try {
        params[parts[i].slice(1)] = decodeURIComponent(segs[i]);
      } catch {
        return undefined;
      }
    } else if (parts[i] !== segs[i]) return undefined;
  }
  return params;
}

/** Reads a request body with a size limit and a deadline. */
export function readLimited(req: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      reject(new PlexusError('BODY_TOO_LARGE', `request body over ${maxBytes} bytes`, 'too_large'));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      reject(new PlexusError('BODY_TIMEOUT', `request body not received within ${timeoutMs} ms`, 'invalid'));
      req.destroy();
    }, timeoutMs);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        clearTimeout(timer);
        reject(new PlexusError('BODY_TOO_LARGE', `request body over ${maxBytes} bytes`, 'too_large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
