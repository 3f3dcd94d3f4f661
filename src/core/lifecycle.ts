/**
 * The one lifecycle every subsystem follows (the js-libp2p shape): a factory
 * `createX(init, components)` builds the subsystem without doing any I/O, `start()` opens what it
 * needs (sockets, timers, child processes), and `stop()` releases it. `src/daemon.ts` starts
 * subsystems in order and stops them in reverse, so a subsystem may rely on everything started
 * before it for as long as it runs.
 */

/** A long-lived part of the agent. `stop()` must be safe to call after a failed `start()`. */
export interface Startable {
  /** Opens sockets, timers and files; throws (with a PlexusError where expected) on failure. */
  start(): Promise<void> | void;
  /** Releases what `start()` opened; never throws for a part that was not started. */
  stop(): Promise<void> | void;
}

/**
 * Starts `parts` in the order of their keys, skipping undefined ones (a part that the
 * configuration turns off). If one fails, stops those already started, in reverse, and rethrows.
 * Returns a function that stops them all in reverse, reporting (not throwing) each failure.
 */
export async function startInOrder(
  parts: Record<string, Startable | undefined>,
  onStopError: (name: string, err: unknown) => void,
): Promise<() => Promise<void>> {
  const started: [string, Startable][] = [];
  const stopAll = async () => {
    for (const [name, part] of started.splice(0).reverse()) {
      try {
        await part.stop();
      } catch (err) {
        onStopError(name, err);
      }
    }
  };
  try {
    for (const [name, part] of Object.entries(parts)) {
      if (!part) continue;
      await part.start();
      started.push([name, part]);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return stopAll;
}
