/**
 * Where an app's traffic goes (issue 18), the seam between workloads and whatever routes
 * connections to apps. A deploy of an app with a port starts the new release on a fresh private
 * port and checks its health; only then does it ask every switch to send new connections there,
 * and the old release drains and stops. The switches are the edge (Caddy's routes for the app's
 * domains), after the kernel redirect of the app's declared port (kernel-redirect.ts). A release that fails
 * its health check is never switched to.
 */

/** Something that routes an app's new connections to a local port. */
export interface TrafficSwitch {
  /** A short name for logs and errors ('edge', 'local'). */
  readonly name: string;
  /** Sends new connections for `app` to 127.0.0.1:`port`; resolves once they go there. */
  switchTo(app: string, port: number): Promise<void>;
  /** `app` was removed: stop routing it. */
  forget(app: string): Promise<void>;
  /**
   * Requests or connections this switch still has open to `app`'s release on `port` (added for
   * the drain): an old release is stopped once every switch reports 0, or after the drain
   * timeout. A switch without it is taken to hold nothing once it has switched.
   */
  inFlight?(app: string, port: number): Promise<number>;
}

/** Where each app's live release listens, as the workloads module knows it. */
export interface AppUpstreams {
  /** The private port of the app's live release, or undefined when none is running. */
  upstreamOf(app: string): number | undefined;
}
