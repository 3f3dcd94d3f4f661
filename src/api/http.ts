/**
 * The HTTP API (default 127.0.0.1:7071): a small router on node:http. Route modules register
 * handlers per resource (src/api/routes/); this file owns status codes, body limits, timeouts
 * and the error shape `{error: {code, message}}`. Domain errors map by `kind`; anything else is
 * a logged 500. `request()` drives the same router in-process, with no port, for tests.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ErrorKind, isPlexusError } from '../core/errors.ts';
import { http } from '../core/http-modules.ts';
import type { Logger } from '../logging/index.ts';
import { parseJsonBody, readLimited } from './body.ts';
import {
  BadAddressError,
  HostNotAllowedError,
  MethodNotAllowedError,
  PortInUseError,
  RouteNotFoundError,
} from './errors.ts';
import { isAllowedHost, normalizeHostName } from './host-allowlist.ts';
import { type InProcessRequestInit, type InProcessResponse, requestInProcess } from './in-process-request.ts';

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
  /**
   * Who sent it, for the audit log: the remote IPv4 address, the /64 of an IPv6 one (one host
   * holds a whole /64), or `in-process`.
   */
  source: string;
  /** The raw request, for streaming bodies (uploads). */
  raw: IncomingMessage;
  /** Reads the whole body up to `maxBytes` (default: the server's limit). */
  body(maxBytes?: number): Promise<Buffer>;
  /** Reads and parses a JSON body. */
  json<T = unknown>(maxBytes?: number): Promise<T>;
}

/** A route handler: return a value to send it as JSON (200), or write to `res` yourself. */
export type RouteHandler = (req: ApiRequest, res: ServerResponse) => Promise<unknown> | unknown;

/** What a route module mounts its routes on. */
export interface Router {
  /** Registers a route; `path` segments starting with `:` are parameters. */
  route(method: string, path: string, handler: RouteHandler): void;
}

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
  /**
   * Host names served besides loopback names and IP literals (`api.hosts`): any other Host
   * header gets 421 (the DNS rebinding guard, host-allowlist.ts).
   */
  hosts?: string[];
}

/** What the HTTP API needs. */
export interface HttpApiComponents {
  /** Receives unexpected (500) errors with their stacks. */
  logger: Logger;
}

/** Builds the HTTP API; no I/O until `start()`. Mount route modules on it before starting. */
export function createHttpApi(init: HttpApiInit, components: HttpApiComponents): HttpApi {
  return new HttpApi(init, components);
}

/** The HTTP API server: the router, and the listening socket once started. */
export class HttpApi implements Router {
  readonly #routes: Route[] = [];
  readonly #init: HttpApiInit;
  readonly #logger: Logger;
  readonly #hosts: ReadonlySet<string>;
  #server: Server | undefined;

  /** Prefer `createHttpApi`. */
  constructor(init: HttpApiInit, components: HttpApiComponents) {
    this.#init = init;
    this.#logger = components.logger;
    this.#hosts = new Set((init.hosts ?? []).map(normalizeHostName));
  }

  /** Registers a route; `path` segments starting with `:` are parameters. */
  route(method: string, path: string, handler: RouteHandler): void {
    this.#routes.push({ method: method.toUpperCase(), parts: path.split('/').filter(Boolean), handler });
  }

  /** The bound address (after start). */
  get address(): AddressInfo | undefined {
    return (this.#server?.address() as AddressInfo | null) ?? undefined;
  }

  /**
   * Sends a request through the routes in-process, with no port: what hono's `app.request` is
   * for tests. Resolves once the response has ended (or `init.signal` aborted it).
   */
  request(method: string, path: string, init?: InProcessRequestInit): Promise<InProcessResponse> {
    return requestInProcess((req, res) => this.handle(req, res), method, path, init);
  }

  /** Handles one request: from the server once started, or from `request()`. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Before any route: a rebound name must not reach a handler, not even a 404.
    if (!isAllowedHost(req.headers.host, this.#hosts)) {
      const err = new HostNotAllowedError(req.headers.host);
      this.#logger.debug({ host: req.headers.host?.slice(0, 100) }, 'request for a foreign Host refused');
      res.shouldKeepAlive = false;
      sendJson(res, 421, { error: { code: err.code, message: err.message } });
      return;
    }
    // A browser (it sends Sec-Fetch-Mode on every request) gets each answer on a connection
    // that closes after it. Chromium resends a request whose reused connection closed before an
    // answer came, and a signed command resent is refused as a REPLAY, its first answer lost
    // (docs/ui.md). A connection never reused is never resent on; the CLI keeps its keep-alive.
    if (req.headers['sec-fetch-mode'] !== undefined) res.shouldKeepAlive = false;
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
          ? new MethodNotAllowedError(req.method ?? '', url.pathname)
          : new RouteNotFoundError(url.pathname);
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
      source: sourceOf(req.socket?.remoteAddress),
      raw: req,
      body: readBody,
      async json<T>(maxBytes?: number) {
        return parseJsonBody<T>(await readBody(maxBytes));
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
        reject(err.code === 'EADDRINUSE' ? new PortInUseError(this.#init.listen) : err),
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
  if (!m || Number(m[2]) > 65535) throw new BadAddressError(text);
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

/** The audit log's source for a remote address: IPv4 as is, IPv6 by its /64. */
function sourceOf(address: string | undefined): string {
  if (!address) return 'in-process';
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!address.includes(':')) return address;
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...left, ...Array(Math.max(8 - left.length - right.length, 0)).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, '').toLowerCase())
    .join(':')}::/64`;
}
