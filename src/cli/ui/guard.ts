/**
 * Who may talk to `plexus ui`'s local server (docs/ui.md, "No CSRF surface"). The server signs
 * with the operator's key, so anything that reaches its API acts as the operator. It answers
 * only: a loopback listen address; a Host header naming exactly that address (a DNS-rebinding
 * page has its own name in Host); an Origin, when a browser sends one, of exactly that address;
 * and, on every /api/ route, the per-launch secret in a header (a page of another origin cannot
 * set a custom header without a CORS preflight, which this server never grants, and cannot read
 * the secret, which lives in the URL fragment and sessionStorage of our origin only).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** The header that carries the per-launch secret. */
export const SECRET_HEADER = 'x-plexus-ui';

/** A refusal: HTTP status, stable code, one-line message. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
}

/** Parses `HOST:PORT` for a loopback listen address, or says why not. */
export function parseLoopbackListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  if (!m) throw new Error(`--listen ${listen}: expected HOST:PORT, e.g. 127.0.0.1:7073`);
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port > 65_535) throw new Error(`--listen ${listen}: port must be 0..65535`);
  const loopback = host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
  if (!loopback)
    throw new Error(
      `--listen ${listen}: the dashboard signs with your key, so it listens on loopback only (127.0.0.1, ::1 or localhost); reach it from elsewhere with an SSH tunnel`,
    );
  return { host, port };
}

/** The Host header values this server answers to, for the port it got. */
export function allowedHosts(host: string, port: number): Set<string> {
  const names = new Set([host, '127.0.0.1', 'localhost', '[::1]']);
  if (host === '::1') names.add('[::1]');
  return new Set([...names].filter((h) => h !== '::1').map((h) => `${h}:${port}`));
}

/** Checks Host and Origin (every route) and the secret (/api/ routes); undefined when allowed. */
export function checkRequest(
  req: IncomingMessage,
  hosts: Set<string>,
  secret: string,
  needsSecret: boolean,
): Refusal | undefined {
  const host = req.headers.host ?? '';
  if (!hosts.has(host))
    return {
      status: 421,
      code: 'UI_HOST_NOT_ALLOWED',
      message: `this dashboard answers only to ${[...hosts][0]}; Host '${host.slice(0, 100)}' is refused`,
    };
  const origin = req.headers.origin;
  if (origin !== undefined && !hosts.has(origin.replace(/^http:\/\//, '')))
    return {
      status: 403,
      code: 'UI_ORIGIN_REFUSED',
      message: `requests from another origin (${String(origin).slice(0, 100)}) are refused`,
    };
  // A browser that says where a request comes from must say it comes from this page.
  const site = req.headers['sec-fetch-site'];
  if (needsSecret && site !== undefined && site !== 'same-origin')
    return { status: 403, code: 'UI_ORIGIN_REFUSED', message: `a ${site} request is refused` };
  if (!needsSecret) return undefined;
  const given = req.headers[SECRET_HEADER];
  if (typeof given !== 'string' || !sameSecret(given, secret))
    return {
      status: 401,
      code: 'UI_SECRET_REQUIRED',
      message: 'open the dashboard with the link plexus ui printed (it carries this launch’s secret)',
    };
  return undefined;
}

function sameSecret(given: string, secret: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}
