/**
 * Private ports of releases behind the kernel redirect (issue 18): a free one for a new release,
 * how many connections a release still has open on its port, read from the kernel's socket
 * tables (/proc/net/tcp and tcp6), and when an old release stopped accepting on its port. A redirected connection's server side sits on the private
 * port (conntrack translated it), so that count is what an old release still serves.
 */
import { readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { HANDOFF_POLL_MS, PRIVATE_PORT_TRIES } from './constants.ts';

/** Largest /proc/net/tcp file read (a busy server lists every connection). */
const MAX_PROC_NET_BYTES = 16 * 1024 * 1024;
/** Socket states of a connection a server still serves: ESTABLISHED, SYN_RECV, CLOSE_WAIT. */
const OPEN_STATES = new Set(['01', '03', '08']);

/** Connections open on local TCP `port` (this network namespace), IPv4 and IPv6. */
export function openConnections(port: number, files = ['/proc/net/tcp', '/proc/net/tcp6']): number {
  let n = 0;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1').slice(0, MAX_PROC_NET_BYTES);
    } catch {
      continue; // no IPv6 on this host
    }
    n += countOpen(text, port);
  }
  return n;
}

/** The lines of a /proc/net/tcp{,6} text whose local port is `port` and whose state is open. */
export function countOpen(text: string, port: number): number {
  return countInStates(text, port, OPEN_STATES);
}

/**
 * The lines of a /proc/net/tcp{,6} text whose local port is `port` and whose state (in hex, as
 * the kernel writes it) is in `states`.
 */
export function countInStates(text: string, port: number, states: ReadonlySet<string>): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let n = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !f[1].endsWith(hex) || !states.has(f[3])) continue;
    n++;
  }
  return n;
}

/**
 * A TCP port free on every interface right now, for a new release's private port, and not in
 * `exclude` (every app's declared port and the agent's own: a release there would take traffic
 * meant for another app, or be shadowed by its redirect). The kernel picks it from the ephemeral
 * range; the release binds it a moment later (another process taking it meanwhile makes the
 * release fail its health check, and the old one keeps serving).
 */
export async function freePrivatePort(exclude: ReadonlySet<number> = new Set()): Promise<number> {
  for (let i = 0; i < PRIVATE_PORT_TRIES; i++) {
    const port = await ephemeralPort();
    if (!exclude.has(port)) return port;
  }
  throw new Error(`no free private port outside ${exclude.size} reserved ones`);
}

function ephemeralPort(host = '::'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      // A host without IPv6: the IPv4 wildcard is every interface there is.
      if (host === '::' && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL'))
        ephemeralPort('0.0.0.0').then(resolve, reject);
      else reject(err);
    });
    server.listen({ port: 0, host, ipv6Only: false, exclusive: true }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Resolves once nothing accepts on 127.0.0.1:`port` any more, `gone()` is true, or `timeoutMs`
 * has passed: the fallback's handoff waits for the old release to close its listener.
 */
export async function untilClosed(port: number, gone: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!gone() && Date.now() < deadline && (await accepts(port)))
    await new Promise((r) => setTimeout(r, HANDOFF_POLL_MS));
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
