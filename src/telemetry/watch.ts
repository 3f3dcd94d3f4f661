/**
 * `telemetry.watch`: the fleet snapshot of `telemetry.nodes`, sent again whenever a record
 * arrives or ours is built, for a dashboard that shows changes as they happen (issue 17). One
 * long-lived command instead of a poll: a poll every half second would write two audit rows and
 * two replay-guard rows a second per open page, and would still be half a second late on average.
 */
import type { Mesh } from '../mesh/index.ts';
import { WATCH_HEARTBEAT_MS, WATCH_MIN_GAP_MS } from './constants.ts';

/**
 * Calls `send` with a fresh snapshot at once, after every record (coalesced to one per
 * WATCH_MIN_GAP_MS, and never two in flight: a slow reader gets the latest, not a backlog), and
 * every WATCH_HEARTBEAT_MS (a peer going down sends no record). Resolves when `signal` aborts.
 */
export async function watchNodes<T>(
  bus: Mesh['telemetry'],
  snapshot: () => T,
  send: (snap: T) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  let sending = false;
  let pending = false;
  let timer: NodeJS.Timeout | undefined;
  let lastAt = 0;
  let failed: unknown;
  const flush = async () => {
    if (sending) {
      pending = true;
      return;
    }
    sending = true;
    try {
      do {
        pending = false;
        lastAt = Date.now();
        await send(snapshot());
      } while (pending && !signal?.aborted);
    } catch (err) {
      failed = err;
      done();
    } finally {
      sending = false;
    }
  };
  const changed = () => {
    if (timer) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        void flush();
      },
      Math.max(0, WATCH_MIN_GAP_MS - (Date.now() - lastAt)),
    );
  };
  const beat = setInterval(() => void flush(), WATCH_HEARTBEAT_MS);
  let done: () => void = () => {};
  const ended = new Promise<void>((r) => {
    done = r;
  });
  bus.on('record', changed);
  bus.on('self', changed);
  signal?.addEventListener('abort', () => done(), { once: true });
  try {
    if (!signal?.aborted) await flush();
    if (!signal?.aborted && failed === undefined) await ended;
  } finally {
    clearTimeout(timer);
    clearInterval(beat);
    bus.off('record', changed);
    bus.off('self', changed);
  }
  if (failed !== undefined && !signal?.aborted) throw failed;
}
