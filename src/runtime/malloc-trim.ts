/**
 * Hands the memory the agent has freed back to the kernel while it is idle.
 *
 * glibc gives freed memory back only from the top of its heap. Everything the agent frees
 * below a chunk still in use stays resident for the life of the process: the buffers of
 * start-up (compiling the bundle, dialling and syncing every member), later the ones of a
 * tunnel's burst. In an idle agent of a 5-agent mesh that was ~4 MB of its ~100 MB, and it
 * grows back by ~0.5 MB a minute (bench/join.ts, idle RSS). `malloc_trim(0)` releases the free pages inside the heap too.
 *
 * It runs when the event loop has been mostly idle since the last look, never while the agent
 * is busy: a tunnel would only fault the same pages in again. The addon is an optional
 * dependency (native/malloc-trim, built by npm with node-gyp); without it (no compiler, a C
 * library other than glibc) the agent keeps those pages and says so once in its debug log.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { loopBusyMeter } from './loop-busy.ts';

/** Start-up's burst of work is over by then (the agent is `online` everywhere within ~2 s). */
const FIRST_TRIM_MS = 15_000;
/** How often the agent looks. A trim of its ~12 MB heap takes under 1 ms. */
const TRIM_EVERY_MS = 30_000;
/** The event loop's share of busy time above which the agent does not trim. */
const IDLE_UTILIZATION = 0.1;

/** native/malloc-trim's exports. */
export interface TrimAddon {
  trim(): boolean;
  supported: boolean;
}

/** What the trimmer reports to the log. */
export interface TrimLog {
  debug(obj: object, msg: string): void;
}

/** The addon, or why there is none. */
export function loadTrimAddon(): TrimAddon | Error {
  try {
    const addon = createRequire(import.meta.url)('plexus-malloc-trim') as TrimAddon;
    return addon.supported ? addon : new Error('this C library has no malloc_trim');
  } catch (err) {
    return err as Error;
  }
}

/** Starts trimming (see the file comment); the timers never keep the process alive. */
export function trimMallocWhenIdle(
  log: TrimLog,
  opts: { firstMs?: number; everyMs?: number; addon?: TrimAddon | Error } = {},
): { stop(): void } {
  const addon = opts.addon ?? loadTrimAddon();
  if (addon instanceof Error) {
    log.debug(
      { err: addon.message.split('\n')[0] },
      'malloc trim unavailable; freed heap memory stays resident',
    );
    return { stop() {} };
  }
  const busy = loopBusyMeter();
  let logged = false;
  const look = () => {
    if (busy() >= IDLE_UTILIZATION) return;
    const t0 = performance.now();
    addon.trim();
    if (!logged) {
      logged = true;
      log.debug({ ms: Number((performance.now() - t0).toFixed(2)) }, 'malloc trim: first run');
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    look();
    timer = setInterval(look, opts.everyMs ?? TRIM_EVERY_MS);
    timer.unref();
  }, opts.firstMs ?? FIRST_TRIM_MS);
  first.unref();
  return {
    stop: () => {
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}
