/**
 * One `/plexus/tcp/1.0.0` stream negotiated ahead of time per recently used peer: opening a
 * stream costs a protocol-negotiation round trip, which is most of a short connection's added
 * latency on the mesh-stream path.
 */
import type { Connection, Stream } from '@libp2p/interface';
import { OPEN_TIMEOUT_MS, POOL_IDLE_MS } from '../../constants.ts';

interface PoolEntry {
  conn: Connection;
  stream?: Stream;
  timer: NodeJS.Timeout | undefined;
}

/** The pool; `open` negotiates a new stream on a connection. */
export class StreamPool {
  readonly #open: (conn: Connection, signal: AbortSignal) => Promise<Stream>;
  readonly #pool = new Map<string, PoolEntry>();
  #stopped = false;

  constructor(open: (conn: Connection, signal: AbortSignal) => Promise<Stream>) {
    this.#open = open;
  }

  /** A ready stream on `conn` (taken out of the pool), else a newly negotiated one. */
  async take(peer: string, conn: Connection, signal: AbortSignal): Promise<Stream> {
    const p = this.#pool.get(peer);
    if (p?.stream) {
      this.#pool.delete(peer);
      clearTimeout(p.timer);
      if (p.conn === conn && p.stream.status === 'open' && p.stream.writeStatus === 'writable')
        return p.stream;
      p.stream.abort(new Error('stale pooled stream'));
    }
    return this.#open(conn, signal);
  }

  /** Negotiates the next stream for `peer` in the background, unless one is ready or on its way. */
  refill(peer: string, conn: Connection): void {
    if (this.#stopped || this.#pool.has(peer)) return;
    const entry: PoolEntry = { conn, timer: undefined };
    this.#pool.set(peer, entry);
    this.#open(conn, AbortSignal.timeout(OPEN_TIMEOUT_MS)).then(
      (stream) => {
        if (this.#pool.get(peer) !== entry) return stream.abort(new Error('pool entry replaced'));
        entry.stream = stream;
        // Unused for a while: give it back, so idle peers hold nothing open.
        entry.timer = setTimeout(() => {
          if (this.#pool.get(peer) === entry) this.#pool.delete(peer);
          stream.abort(new Error('pooled stream idle'));
        }, POOL_IDLE_MS);
        entry.timer.unref();
        stream.addEventListener('close', () => {
          if (this.#pool.get(peer) === entry) {
            this.#pool.delete(peer);
            clearTimeout(entry.timer);
          }
        });
      },
      () => {
        if (this.#pool.get(peer) === entry) this.#pool.delete(peer);
      },
    );
  }

  /** Aborts every pooled stream. */
  stop(): void {
    this.#stopped = true;
    for (const p of this.#pool.values()) {
      clearTimeout(p.timer);
      p.stream?.abort(new Error('agent stopping'));
    }
    this.#pool.clear();
  }
}
