/**
 * The switches an app's traffic goes through (issue 18): the agent's local port handover, always
 * (it keeps the app's declared port answering for direct clients and mesh tunnels), then every
 * switch another subsystem registered (the edge). A deploy calls `switchTo` only once the new
 * release is healthy; the old release is stopped once `drain` says nothing is in flight to it.
 */
import type { Logger } from '../logging/index.ts';
import { DRAIN_POLL_MS } from './constants.ts';
import { TrafficSwitchError } from './errors.ts';
import type { LocalHandover } from './local-handover.ts';
import type { AppUpstreams, TrafficSwitch } from './traffic.ts';

/** Routes apps' traffic through the local handover and the registered switches. */
export class TrafficRouter implements AppUpstreams {
  readonly #local: LocalHandover;
  readonly #switches: TrafficSwitch[] = [];
  readonly #logger: Logger;
  /** The app's live private port as the database has it, for apps the handover does not route yet. */
  readonly #recorded: (app: string) => number | undefined;

  constructor(local: LocalHandover, recorded: (app: string) => number | undefined, logger: Logger) {
    this.#local = local;
    this.#recorded = recorded;
    this.#logger = logger;
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
    return this.#local.upstreamOf(app) ?? this.#recorded(app);
  }

  /**
   * Sends `app`'s new connections to `port`: the local handover (listening on `publicPort`), then
   * each registered switch. Throws TrafficSwitchError naming the switch that failed.
   */
  async switchTo(app: string, publicPort: number, port: number): Promise<void> {
    try {
      await this.#local.route(app, publicPort, port);
    } catch (err) {
      throw new TrafficSwitchError(this.#local.name, app, (err as Error).message);
    }
    for (const sw of this.#switches) {
      try {
        await sw.switchTo(app, port);
      } catch (err) {
        throw new TrafficSwitchError(sw.name, app, (err as Error).message);
      }
    }
  }

  /** Whether the local handover holds `port` for `app` (so the port is the app's, not taken). */
  holds(app: string, port: number): boolean {
    return this.#local.holds(app, port);
  }

  /** Connections or requests still open to `app`'s release on `port`, over every switch. */
  async inFlight(app: string, port: number): Promise<number> {
    let n = this.#local.openTo(port);
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

  /** The app stopped: its declared port is let go (the edge keeps its routes). */
  async release(app: string): Promise<void> {
    await this.#local.release(app);
  }

  /** The app was removed: every switch forgets it. */
  async forget(app: string): Promise<void> {
    await this.#local.release(app);
    for (const sw of this.#switches)
      await sw
        .forget(app)
        .catch((err: Error) =>
          this.#logger.warn({ app, switch: sw.name, err: err.message }, 'cannot forget app'),
        );
  }

  /** The agent stops: the local listeners close (the registered switches are their owners'). */
  async close(): Promise<void> {
    await this.#local.close();
  }
}
