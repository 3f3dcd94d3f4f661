/**
 * `plexus ui`'s local server (issue 17, docs/ui.md): serves the dashboard's static assets and a
 * small API the page calls, and signs every command itself with the operator key, as the remote
 * CLI does (remote-client.ts: one client per node, each proving whom it talks to and checking
 * every reply frame). The key stays in this process; the page never sees it. guard.ts says who
 * may call.
 *
 *   GET  /, /app.js, /app.css     the page (strict CSP, no inline script, nothing from elsewhere)
 *   GET  /api/events              text/event-stream of fleet snapshots (fleet.ts)
 *   POST /api/call                {node?, action, args} → {result} | {error}
 *   POST /api/stream              {node?, action: apps.logs|shell.open, args} → NDJSON lines
 *   POST /api/input               {session, frames} (a terminal's keys and resizes)
 *   POST /api/deploy?node=&app=   the bundle's bytes → NDJSON progress lines, then the result
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { STATUS_BY_KIND } from '../../api/http.ts';
import { UI_CSP } from '../../api/routes/ui.ts';
import type { ErrorKind } from '../../core/errors.ts';
import type { AgentClient } from '../client.ts';
import { UiRequestError } from '../errors.ts';
import type { FleetHub } from './fleet.ts';
import { allowedHosts, checkRequest, parseLoopbackListen } from './guard.ts';
import { errorBody, readJsonBody, refuse, sendJson } from './http.ts';
import { bundleFrames, codeOf, Sessions, STREAM_ACTIONS } from './streams.ts';

/** What the server needs. */
export interface UiServerInit {
  /** `HOST:PORT`, loopback only. */
  listen: string;
  /** The folder with index.html, app.js and app.css (src/runtime/ui-bundle.mjs). */
  assets: string;
  /** A signing client for a node (the entry agent when undefined). */
  clientFor(node?: string): AgentClient;
  fleet: FleetHub;
}

/** The running server. */
export interface UiServer {
  /** The page's address, with this launch's secret in the fragment. */
  url: string;
  close(): Promise<void>;
}

/** The page's policy: the same as the agent's /ui/ (src/api/routes/ui.ts says why each part). */
export const CSP = UI_CSP;

/** The largest JSON body of /api/call, /api/stream and /api/input (an env value, a key batch). */
const MAX_JSON_BODY = 64 * 1024;
const ACTION_NAME = /^[a-z]+(\.[a-z]+){1,3}$/;
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const ASSETS: Record<string, [string, string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/app.css': ['app.css', 'text/css; charset=utf-8'],
};

/** Starts the server; resolves once it listens. */
export async function startUiServer(init: UiServerInit): Promise<UiServer> {
  const { host, port } = parseLoopbackListen(init.listen);
  const secret = randomBytes(24).toString('base64url');
  const files = new Map(
    Object.entries(ASSETS).map(([p, [f, type]]) => [p, { body: readFileSync(join(init.assets, f)), type }]),
  );
  const sessions = new Sessions();
  let hosts = allowedHosts(host, port);

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof UiRequestError) return refuse(res, err.status, err.code, err.message);
      refuse(res, 502, codeOf(err), (err as Error).message);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://ui');
    const api = url.pathname.startsWith('/api/');
    const refusal = checkRequest(req, hosts, secret, api);
    if (refusal) return refuse(res, refusal.status, refusal.code, refusal.message);
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    // Chromium resends a POST whose reused connection closed before an answer came; this server
    // signs each call afresh, so a resent call would run twice. A connection closed after each
    // answer is never reused, so never resent on (the agent's API does the same for browsers).
    res.shouldKeepAlive = false;
    if (!api) {
      const file = req.method === 'GET' ? files.get(url.pathname) : undefined;
      if (!file) return refuse(res, 404, 'UI_NOT_FOUND', `no page at ${url.pathname.slice(0, 100)}`);
      res.writeHead(200, {
        'content-type': file.type,
        'content-security-policy': CSP,
        'x-frame-options': 'DENY',
        'cache-control': 'no-store',
      });
      return void res.end(file.body);
    }
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /api/events') return events(res);
    if (route === 'POST /api/call') {
      const { node, action, args } = callOf(await readJsonBody(req, MAX_JSON_BODY));
      if (action === 'shell.open')
        throw new UiRequestError(400, 'UI_BAD_REQUEST', 'open a terminal with /api/stream');
      try {
        return sendJson(res, 200, { result: await init.clientFor(node).call(action, args) });
      } catch (err) {
        return sendJson(res, statusOf(err), errorBody(codeOf(err), (err as Error).message));
      }
    }
    if (route === 'POST /api/stream') {
      const { node, action, args } = callOf(await readJsonBody(req, MAX_JSON_BODY));
      if (!STREAM_ACTIONS.has(action))
        throw new UiRequestError(400, 'UI_BAD_REQUEST', `only ${[...STREAM_ACTIONS].join(', ')} stream`);
      return sessions.run(init.clientFor(node), action, args, res);
    }
    if (route === 'POST /api/input') {
      const body = await readJsonBody(req, MAX_JSON_BODY);
      if (typeof body.session !== 'string' || !Array.isArray(body.frames) || body.frames.length > 64)
        throw new UiRequestError(400, 'UI_BAD_REQUEST', 'give {session, frames: [at most 64]}');
      const bad = sessions.input(body.session, body.frames);
      if (bad) throw new UiRequestError(bad.startsWith('no such') ? 404 : 400, 'UI_BAD_INPUT', bad);
      return sendJson(res, 200, { ok: true });
    }
    if (route === 'POST /api/deploy') {
      const node = url.searchParams.get('node') ?? undefined;
      const app = url.searchParams.get('app') ?? '';
      if (node !== undefined && !NODE_NAME.test(node))
        throw new UiRequestError(400, 'UI_BAD_REQUEST', 'bad node name');
      if (String(req.headers['content-type'] ?? '') !== 'application/octet-stream')
        throw new UiRequestError(415, 'UI_BAD_CONTENT_TYPE', 'send the bundle as application/octet-stream');
      // The node checks the name and everything else; an upload is only ever a new release.
      return sessions.run(init.clientFor(node), 'apps.deploy', { app, upload: {} }, res, bundleFrames(req));
    }
    refuse(res, 404, 'UI_NOT_FOUND', `no route ${route.slice(0, 100)}`);
  }

  function events(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    const send = (s: unknown) => res.write(`event: fleet\ndata: ${JSON.stringify(s)}\n\n`);
    send(init.fleet.snapshot);
    const off = init.fleet.subscribe(send);
    const keep = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    res.once('close', () => {
      off();
      clearInterval(keep);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  hosts = allowedHosts(host, bound);
  const shown = host === '::1' ? '[::1]' : host;
  return {
    url: `http://${shown}:${bound}/#s=${secret}`,
    close: () =>
      new Promise<void>((resolve) => {
        sessions.closeAll();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Checks the shape of a call from the page; the node checks the rest (args, authority). */
function callOf(body: Record<string, unknown>): {
  node?: string;
  action: string;
  args: Record<string, unknown>;
} {
  const { node, action, args = {} } = body;
  if (node !== undefined && (typeof node !== 'string' || !NODE_NAME.test(node)))
    throw new UiRequestError(400, 'UI_BAD_REQUEST', 'node is a node name');
  if (typeof action !== 'string' || !ACTION_NAME.test(action))
    throw new UiRequestError(400, 'UI_BAD_REQUEST', 'action is an action name such as apps.list');
  if (typeof args !== 'object' || args === null || Array.isArray(args))
    throw new UiRequestError(400, 'UI_BAD_REQUEST', 'args is an object');
  return { node: node as string | undefined, action, args: args as Record<string, unknown> };
}

/** The HTTP status for a failed call, from the error's kind, as the agent's API maps it. */
function statusOf(err: unknown): number {
  const kind = (err as { body?: { kind?: ErrorKind } }).body?.kind;
  return (kind && STATUS_BY_KIND[kind]) || 502;
}
