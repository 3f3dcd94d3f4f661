/**
 * A deadline for one tunnel's setup that costs nothing once cleared. `AbortSignal.timeout` does
 * not: its timer stays armed after the tunnel opened, and when it fires (every tunnel, 10 s later)
 * it builds a DOMException with a stack trace and dispatches it through every `AbortSignal.any`
 * that follows it. In a profile of 500 short tunnels through a forward, those late timeouts and
 * the abort on each client's close were ~7 % of the opening agent's CPU, competing with the next
 * tunnel's setup on the same event loop.
 */

/** A signal that aborts after `ms` or with `parent`, and `clear()` to disarm both. */
export interface Deadline {
  signal: AbortSignal;
  /** Disarms the timer and unhooks the parent; idempotent. */
  clear(): void;
}

/** Arms a deadline of `ms`, also aborted with `parent` (its reason passed on). */
export function deadline(ms: number, parent?: AbortSignal): Deadline {
  const ac = new AbortController();
  const onParent = () => ac.abort(parent?.reason);
  const timer = setTimeout(() => ac.abort(new Error(`timed out after ${ms} ms`)), ms);
  timer.unref();
  if (parent?.aborted) onParent();
  else parent?.addEventListener('abort', onParent, { once: true });
  return {
    signal: ac.signal,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParent);
    },
  };
}
