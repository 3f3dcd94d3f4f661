/**
 * Forwards: a local listening port whose every connection is tunnelled to a mesh target
 * (`plexus forward add 127.0.0.1:15432 db.web-2`). Kept in SQLite and listening again when the
 * agent restarts. When the target cannot be reached, a client is refused at once (reset), and
 * the next connection tries again, so the forward works as soon as the target is back.
 */
import { randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../logging/index.ts';
import { LOOPBACK, MAX_FORWARDS } from './constants.ts';
import { ListenError, ServiceConflictError, UnknownForwardError } from './errors.ts';
import type { ForwardRepo, ForwardRow } from './forward-repo.ts';
import { formatTarget, parseTarget, type Target } from './targets.ts';
import type { Tunnels } from './tunnels.ts';

/** Why a forward's tunnel setup is abandoned: its client closed. */
const CLIENT_GONE = new Error('the client closed its connection');

/** One row of `plexus forward ls`. */
export interface ForwardView {
  id: string;
  listen: string;
  target: string;
  state: 'listening' | 'failed';
  error?: string;
  active: number;
  connections: number;
  refused: number;
  lastError?: string;
  /** What carried its last tunnel: `data`, `spliced` (through a relay), `stream` or `local`. */
  carrier?: string;
}

interface Live {
  row: ForwardRow;
  target: Target;
  server?: Server;
  error?: string;
  sockets: Set<Socket>;
  connections: number;
  refused: number;
  lastError?: string;
  carrier?: string;
}

/** What forwards use. */
export interface ForwardsComponents {
  repo: ForwardRepo;
  tunnels: Tunnels;
  logger: Logger;
}

/** Parses `[HOST:]PORT` (HOST may be `[v6]`); port 0 picks a free one. */
export function parseListen(text: string | undefined): { host: string; port: number } {
  if (!text) return { host: LOOPBACK, port: 0 };
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) throw new ListenError(text, 'expected [HOST:]PORT, for example 127.0.0.1:15432');
  const host = m[1] ? m[1].replace(/^\[|\]$/g, '') : LOOPBACK;
  return { host, port };
}

/** The forwards of this node. */
export class Forwards {
  readonly #c: ForwardsComponents;
  readonly #live = new Map<string, Live>();

  constructor(components: ForwardsComponents) {
    this.#c = components;
  }

  /** Listens on every stored forward; one that cannot bind is reported as failed, not fatal. */
  async start(): Promise<void> {
    for (const row of this.#c.repo.list()) {
      let target: Target;
      try {
        target = parseTarget(row.target);
      } catch {
        this.#c.logger.warn(
          { id: row.id, target: row.target },
          'skipping a stored forward with a bad target',
        );
        continue;
      }
      const live: Live = { row, target, sockets: new Set(), connections: 0, refused: 0 };
      this.#live.set(row.id, live);
      try {
        live.server = await this.#listen(live, row.listenHost, row.listenPort);
      } catch (err) {
        live.error = (err as Error).message;
        this.#c.logger.warn({ id: row.id, err: live.error }, 'forward cannot listen');
      }
    }
  }

  /** Closes every listener and resets the connections in flight. */
  async stop(): Promise<void> {
    await Promise.all([...this.#live.values()].map((l) => this.#close(l)));
    this.#live.clear();
  }

  /** Adds a forward: binds first (so a busy port fails here), then stores it. */
  async add(listenText: string | undefined, targetText: string): Promise<ForwardView> {
    const target = parseTarget(targetText);
    // An unknown node is a typo far more often than a node that will join later: say so now.
    this.#c.tunnels.resolve(target.node);
    const { host, port } = parseListen(listenText);
    if (this.#live.size >= MAX_FORWARDS)
      throw new ServiceConflictError('TOO_MANY_FORWARDS', `at most ${MAX_FORWARDS} forwards`, 'too_large');
    const id = `fw-${randomBytes(4).toString('hex')}`;
    const row: ForwardRow = {
      id,
      listenHost: host,
      listenPort: port,
      target: formatTarget(target),
      createdAt: Date.now(),
    };
    const live: Live = { row, target, sockets: new Set(), connections: 0, refused: 0 };
    const server = await this.#listen(live, host, port);
    live.server = server;
    row.listenPort = (server.address() as { port: number }).port;
    try {
      this.#c.repo.insert(row);
    } catch (err) {
      server.close();
      throw new ListenError(`${host}:${row.listenPort}`, `already forwarded (${(err as Error).message})`);
    }
    this.#live.set(id, live);
    // Its first client should not wait to learn whether the target's data port answers.
    this.#c.tunnels.warm(target.node);
    this.#c.logger.info({ id, listen: `${host}:${row.listenPort}`, target: row.target }, 'forward added');
    return this.#view(live);
  }

  /** Removes a forward: stops listening, resets its connections, deletes the row. */
  async remove(id: string): Promise<{ id: string }> {
    const live = this.#live.get(id);
    if (!live) throw new UnknownForwardError(id);
    this.#live.delete(id);
    this.#c.repo.remove(id);
    await this.#close(live);
    this.#c.logger.info({ id }, 'forward removed');
    return { id };
  }

  /** Every forward with its state and counters. */
  list(): ForwardView[] {
    return [...this.#live.values()].map((l) => this.#view(l));
  }

  /** Open client sockets over all forwards (leak checks). */
  activeSockets(): number {
    let n = 0;
    for (const l of this.#live.values()) n += l.sockets.size;
    return n;
  }

  #view(l: Live): ForwardView {
    const host = l.row.listenHost.includes(':') ? `[${l.row.listenHost}]` : l.row.listenHost;
    return {
      id: l.row.id,
      listen: `${host}:${l.row.listenPort}`,
      target: l.row.target,
      state: l.server ? 'listening' : 'failed',
      ...(l.error ? { error: l.error } : {}),
      active: l.sockets.size,
      connections: l.connections,
      refused: l.refused,
      ...(l.lastError ? { lastError: l.lastError } : {}),
      ...(l.carrier ? { carrier: l.carrier } : {}),
    };
  }

  #listen(live: Live, host: string, port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
        this.#accept(live, socket),
      );
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new ListenError(`${host}:${port}`, err.code ?? err.message)),
      );
      server.listen({ host, port, backlog: 1024 }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.#c.logger.warn({ err, id: live.row.id }, 'forward listener error'));
        resolve(server);
      });
    });
  }

  #accept(live: Live, socket: Socket): void {
    socket.on('error', () => {});
    live.sockets.add(socket);
    live.connections++;
    const gone = new AbortController();
    socket.once('close', () => {
      live.sockets.delete(socket);
      // Only while the tunnel is being set up: once it is, nothing listens any more (client.ts,
      // `opened`), and an abort would still build and dispatch an event for every connection
      // that closes, on the event loop that is opening the next one. With a reason of its own:
      // abort() without one builds a DOMException (a stack trace).
      if (getEventListeners(gone.signal, 'abort').length > 0) gone.abort(CLIENT_GONE);
    });
    const refused = (err: Error & { code?: string }) => {
      live.refused++;
      live.lastError = `${err.code ?? 'ERROR'}: ${err.message}`;
      // A reset tells the client at once that the target is not there (like a closed port).
      if (!socket.destroyed) socket.resetAndDestroy();
    };
    this.#c.tunnels.open(live.target, gone.signal, { optimistic: true }).then((tunnel) => {
      if (socket.destroyed) return tunnel.abort();
      live.carrier = tunnel.carrier;
      tunnel.attach(socket).catch(refused);
    }, refused);
  }

  async #close(live: Live): Promise<void> {
    for (const s of live.sockets) s.resetAndDestroy();
    const server = live.server;
    live.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
