/** A queue of frames for an interactive session's input (docs/shell.md). */
/**
 * An async queue of a session's input frames that ends when closed: filled by whoever receives
 * the keys (the CLI's stdin, a dashboard's input POSTs), read by the command that sends them.
 */
export function frameQueue<T = Record<string, unknown>>() {
  const items: T[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  const drainedListeners: (() => void)[] = [];
  return {
    push(f: T) {
      if (closed) return;
      items.push(f);
      wake?.();
    },
    close() {
      closed = true;
      wake?.();
    },
    get size() {
      return items.length;
    },
    onDrained(f: () => void) {
      drainedListeners.push(f);
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (items.length > 0) {
          yield items.shift()!;
          if (items.length === 0) for (const f of drainedListeners) f();
        }
        if (closed) return;
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    },
  };
}
