/**
 * The agent's own port handover (issue 18): the agent listens on an app's declared port and
 * forwards each connection to the private port of the app's live release. Switching releases is
 * then an assignment: connections accepted from that moment go to the new release, those already
 * open stay on the old one until they end, and the listening socket never closes, so no client
 * is refused during a deploy. It listens on the addresses the release itself listens on
 * (listen-address.ts), so an app bound to loopback is not exposed by the handover.
 *
 * The cost, measured by bench/deploy-switch.ts and stated in docs/workloads.md: one more loopback
 * hop through the agent per connection (accept, connect, two pipes), and the app sees its
 * clients as 127.0.0.1. While the agent is down, the declared port is not served (the release
 * still answers on its private port); the agent takes it back when it starts.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../logging/index.ts';
import { HANDOVER_BIND_WAIT_MS, HANDOVER_MAX_CONNECTIONS } from './constants.ts';
import { connectHost, listenAddresses } from './listen-address.ts';

/** Options of the local handover; defaults in constants.ts. */
export interface LocalHandoverInit {
  maxConnections?: number;
  bindWaitMs?: number;
}

interface Route {
  publicPort: number;
  /** Addresses listened on, sorted, to tell whether a new release needs other listeners. */
  hosts: string;
  servers: Server[];
  upstream: { host: string; port: number };
}

/** Forwards each app's declared port to its live release's private port. */
export class LocalHandover {
  readonly name = 'local';
  readonly #routes = new Map<string, Route>();
  /** Open forwarded connections per private port: what a draining release still serves. */
  readonly #open = new Map<number, number>();
  readonly #logger: Logger;
  readonly #max: number;
  readonly #bindWaitMs: number;

  constructor(init: LocalHandoverInit, components: { logger: Logger }) {
    this.#logger = components.logger;
    this.#max = init.maxConnections ?? HANDOVER_MAX_CONNECTIONS;
    this.#bindWaitMs = init.bindWaitMs ?? HANDOVER_BIND_WAIT_MS;
  }

  /**
   * Sends new connections to `publicPort` on to the release listening on `upstreamPort`. The
   * first call for an app binds `publicPort` (waiting up to the bind wait for a process of the
   * app from before issue 18 to let go of it); later ones only move the target, unless the
   * declared port or the release's listen addresses changed.
   */
  async route(app: string, publicPort: number, upstreamPort: number): Promise<void> {
    let addrs = listenAddresses(upstreamPort);
    if (!addrs.length) {
      // A release listening where /proc/net does not show it (another network namespace): keep
      // the declared port on loopback, never wider than what we know.
      this.#logger.warn({ app, port: upstreamPort }, 'cannot see where the release listens; using loopback');
      addrs = ['127.0.0.1'];
    }
    const hosts = bindHosts(addrs);
    const upstream = {
      host: connectHost(addrs.find((a) => a === '0.0.0.0' || a === '::') ?? addrs[0]),
      port: upstreamPort,
    };
    const had = this.#routes.get(app);
    if (had && had.publicPort === publicPort && had.hosts === hosts.join(',')) {
      had.upstream = upstream;
      return;
    }
    if (had) await this.release(app);
    const route: Route = { publicPort, hosts: hosts.join(','), servers: [], upstream };
    try {
      for (const h of hosts) route.servers.push(await this.#listen(route, h, hosts.includes('0.0.0.0')));
    } catch (err) {
      for (const s of route.servers) s.close();
      throw err;
    }
    this.#routes.set(app, route);
  }

  /** Forwarded connections still open to `upstreamPort`. */
  openTo(upstreamPort: number): number {
    return this.#open.get(upstreamPort) ?? 0;
  }

  /** The private port `app`'s declared port forwards to, if it is routed. */
  upstreamOf(app: string): number | undefined {
    return this.#routes.get(app)?.upstream.port;
  }

  /** Whether the handover listens on `publicPort` for `app`. */
  holds(app: string, publicPort: number): boolean {
    return this.#routes.get(app)?.publicPort === publicPort;
  }

  /** Stops listening on `app`'s declared port (the app stopped); open connections go on. */
  async release(app: string): Promise<void> {
    const route = this.#routes.get(app);
    if (!route) return;
    this.#routes.delete(app);
    // close() stops listening at once; its callback would wait for every open connection to end.
    for (const s of route.servers) s.close();
    await new Promise((r) => setImmediate(r));
  }

  /** Stops every listener (the agent stops). */
  async close(): Promise<void> {
    await Promise.all([...this.#routes.keys()].map((app) => this.release(app)));
  }

  async #listen(route: Route, host: string, v6Only: boolean): Promise<Server> {
    const deadline = Date.now() + this.#bindWaitMs;
    for (;;) {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (c) => this.#forward(route, c));
      server.maxConnections = this.#max;
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port: route.publicPort, host, ipv6Only: host === '::' && v6Only }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        server.on('error', (err) =>
          this.#logger.warn({ port: route.publicPort, err: err.message }, 'handover listener error'),
        );
        return server;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() >= deadline) throw err;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  #forward(route: Route, client: Socket): void {
    const { host, port } = route.upstream;
    const upstream = connect({ host, port, allowHalfOpen: true, noDelay: true });
    this.#open.set(port, (this.#open.get(port) ?? 0) + 1);
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      const n = (this.#open.get(port) ?? 1) - 1;
      if (n > 0) this.#open.set(port, n);
      else this.#open.delete(port);
    };
    // An error on one side resets the other: the client learns the connection broke, as it would
    // have talking to the app directly.
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => {
      upstream.destroy();
      done();
    });
    upstream.on('close', () => {
      client.destroy();
      done();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/**
 * The addresses to bind, without overlaps the kernel would refuse: a wildcard covers the specific
 * addresses of its family, and `::` alone (dual stack, as Node binds it) covers IPv4 too.
 */
export function bindHosts(addrs: string[]): string[] {
  const v4 = addrs.filter((a) => !a.includes(':'));
  const v6 = addrs.filter((a) => a.includes(':'));
  const out: string[] = [];
  if (v4.includes('0.0.0.0')) out.push('0.0.0.0');
  else if (!v6.includes('::')) out.push(...v4);
  if (v6.includes('::')) out.push('::');
  else out.push(...v6);
  return [...new Set(out)].sort();
}
