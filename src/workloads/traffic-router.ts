/**
 * The switches an app's traffic goes through (issue 18): the kernel redirect of its declared port
 * (kernel-redirect.ts; it serves direct clients, mesh tunnels and the edge alike), then every
 * switch another subsystem registered. A deploy calls `switchTo` only once the new release is
 * healthy; the old release is stopped once `drain` says nothing is open to it any more.
 *
 * Where the kernel redirect cannot work (the agent is not root, nft is missing or refused), the
 * router says so once and deploys fall back to what they did before issue 18: the release listens
 * on the declared port itself, and a deploy stops the old release before it starts the new one.
 */
import type { Logger } from '../logging/index.ts';
import { DRAIN_POLL_MS } from './constants.ts';
import { TrafficSwitchError } from './errors.ts';
import type { KernelRedirect, Redirect } from './kernel-redirect.ts';
import { openConnections } from './private-port.ts';
import type { AppUpstreams, TrafficSwitch } from './traffic.ts';

/** Routes apps' traffic through the kernel redirect and the registered switches. */
export class TrafficRouter implements AppUpstreams {
  readonly #kernel: KernelRedirect | undefined;
  readonly #switches: TrafficSwitch[] = [];
  readonly #logger: Logger;
  /** The app's live private port as the database has it, for apps without a rule yet. */
  readonly #recorded: (app: string) => number | undefined;
  /** Why deploys cannot overlap on this node; undefined once the kernel redirect works. */
  #fallback: string | undefined = 'the kernel redirect is not set up yet';

  constructor(
    kernel: KernelRedirect | undefined,
    recorded: (app: string) => number | undefined,
    logger: Logger,
  ) {
    this.#kernel = kernel;
    this.#recorded = recorded;
    this.#logger = logger;
  }

  /**
   * The agent starts: the kernel table is rewritten from the persisted live ports (`routes`),
   * which keeps every rule a previous agent left for a live app and drops the others. When that
   * fails, deploys take the fallback, said once in the log (and in `plexus apps`).
   */
  async start(routes: Map<string, Redirect>, off = false): Promise<void> {
    let why = off || !this.#kernel ? 'the kernel redirect is off in the config' : undefined;
    // Turned off after apps ran behind it: their rules must not keep redirecting declared ports
    // away from releases that will listen there (an agent that never redirected leaves the
    // table alone: it may be another agent's on a test machine).
    if (off && routes.size) await this.#kernel?.drop();
    if (!why && process.getuid?.() !== 0) why = 'the agent does not run as root';
    if (!why)
      why = await this.#kernel!.reconcile(routes).then(
        () => undefined,
        (err: Error) => err.message,
      );
    this.#fallback = why;
    if (why)
      this.#logger.warn(
        { reason: why },
        'zero-downtime deploys are off: apps listen on their declared port, and a deploy or restart stops the old release before starting the new one',
      );
  }

  /** True when deploys overlap behind the kernel redirect; false in the fallback. */
  get redirects(): boolean {
    return this.#fallback === undefined;
  }

  /** Why deploys stop then start on this node, or undefined when they are zero-downtime. */
  get fallbackReason(): string | undefined {
    return this.#fallback;
  }

  /** Adds a switch (the edge); returns the function that removes it. */
  register(sw: TrafficSwitch): () => void {
    this.#switches.push(sw);
    return () => {
      const i = this.#switches.indexOf(sw);
      if (i >= 0) this.#switches.splice(i, 1);
    };
  }

  /** The private port of the app's live release, or undefined when none is running. */
  upstreamOf(app: string): number | undefined {
    return this.#kernel?.upstreamOf(app) ?? this.#recorded(app);
  }

  /**
   * Sends `app`'s new connections to `port`: the kernel rule of `publicPort`, then each
   * registered switch. Throws TrafficSwitchError naming the switch that failed.
   */
  async switchTo(app: string, publicPort: number, port: number): Promise<void> {
    if (this.#kernel && this.redirects) {
      try {
        await this.#kernel.route(app, publicPort, port);
      } catch (err) {
        throw new TrafficSwitchError(this.#kernel.name, app, (err as Error).message);
      }
    }
    for (const sw of this.#switches) {
      try {
        await sw.switchTo(app, port);
      } catch (err) {
        throw new TrafficSwitchError(sw.name, app, (err as Error).message);
      }
    }
  }

  /** Whether the kernel redirects `port` for `app` (so the port is the app's, not taken). */
  holds(app: string, port: number): boolean {
    return this.#kernel?.holds(app, port) ?? false;
  }

  /**
   * Connections still open to `app`'s release on `port`: the kernel's sockets on that local port
   * (conntrack keeps redirected ones there until they end), plus what each switch reports.
   */
  async inFlight(app: string, port: number): Promise<number> {
    let n = openConnections(port);
    for (const sw of this.#switches) {
      if (!sw.inFlight) continue;
      n += await sw.inFlight(app, port).catch((err: Error) => {
        this.#logger.warn({ app, switch: sw.name, err: err.message }, 'cannot count in-flight requests');
        return 0;
      });
    }
    return n;
  }

  /** Resolves once nothing is in flight to `port`, `timeoutMs` has passed, or `signal` aborts. */
  async drain(app: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!signal.aborted && Date.now() < deadline && (await this.inFlight(app, port)) > 0)
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
  }

  /** The app stopped: its rule goes, so its declared port is free again (the edge keeps its routes). */
  async release(app: string): Promise<void> {
    await this.#kernel?.release(app);
  }

  /** The app was removed: its rule goes, and every switch forgets it. */
  async forget(app: string): Promise<void> {
    await this.#kernel
      ?.release(app)
      .catch((err: Error) => this.#logger.warn({ app, err: err.message }, 'cannot remove the redirect'));
    for (const sw of this.#switches)
      await sw
        .forget(app)
        .catch((err: Error) =>
          this.#logger.warn({ app, switch: sw.name, err: err.message }, 'cannot forget app'),
        );
  }
}
