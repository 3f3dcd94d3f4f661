/**
 * The telemetry bus on `plexus/telemetry/1`: every node publishes a record every interval and
 * at once on demand (an app changed state); every node keeps the latest record per peer and
 * derives `online|suspect|down` from its age. The mesh fills the identity and reachability
 * fields; collectors registered with `addProvider` (system and app figures) fill the rest.
 */
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import type { Logger } from '../logging/index.ts';
import { DOWN_INTERVALS, MAX_TELEMETRY_BYTES, ONLINE_INTERVALS } from './constants.ts';

/** The fields every record has; providers add more (DESIGN.md, Mesh: telemetry). */
export const telemetryBaseSchema = z.looseObject({
  node: z.string().min(1).max(63),
  peerId: z.string().min(1).max(128),
  seq: z.number().int().nonnegative(),
  ts: z.number().int().positive(),
  version: z.string().max(64),
  uptimeS: z.number().nonnegative(),
  addrs: z.array(z.string().max(512)).max(32).optional(),
  reach: z.enum(['direct', 'relayed']).optional(),
});
/** A telemetry record as received. */
export type TelemetryRecord = z.infer<typeof telemetryBaseSchema> & Record<string, unknown>;

/** A peer's liveness from the age of its last record. */
export type PeerState = 'online' | 'suspect' | 'down';

/** Derives the state from the age of the last sighting (DESIGN.md: 3 and 6 intervals). */
export function stateOf(
  lastSeen: number | null | undefined,
  intervalMs: number,
  now = Date.now(),
): PeerState {
  if (!lastSeen) return 'down';
  const age = now - lastSeen;
  if (age <= ONLINE_INTERVALS * intervalMs) return 'online';
  if (age <= DOWN_INTERVALS * intervalMs) return 'suspect';
  return 'down';
}

/** Contributes fields to this node's record. Must be cheap; called every interval. */
export type TelemetryProvider = () => Record<string, unknown> | Promise<Record<string, unknown>>;

/** Decodes and checks a received record; returns undefined if it is not acceptable. */
export function decodeTelemetry(data: Uint8Array): TelemetryRecord | undefined {
  if (data.byteLength > MAX_TELEMETRY_BYTES) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = telemetryBaseSchema.safeParse(raw);
  return parsed.success ? (parsed.data as TelemetryRecord) : undefined;
}

/** Events of the bus: `record` for every accepted record from a peer. */
export interface TelemetryEvents {
  record: [TelemetryRecord];
}

/** Local state of the bus: our own sequence and the latest record of each peer. */
export class TelemetryBus extends EventEmitter<TelemetryEvents> {
  readonly #latest = new Map<string, TelemetryRecord>();
  readonly #providers: TelemetryProvider[] = [];
  readonly #logger: Logger;
  #seq = 0;

  constructor(logger: Logger) {
    super();
    this.#logger = logger;
  }

  /** Adds a provider of record fields. */
  addProvider(provider: TelemetryProvider): void {
    this.#providers.push(provider);
  }

  /** Builds this node's next record from the base fields and every provider. */
  async build(base: Omit<TelemetryRecord, 'seq' | 'ts'>): Promise<TelemetryRecord> {
    const record: Record<string, unknown> = { ...base, seq: ++this.#seq, ts: Date.now() };
    for (const p of this.#providers) {
      try {
        Object.assign(record, await p());
      } catch (err) {
        // A failing collector degrades the record; it must not stop the heartbeat.
        this.#logger.warn({ err }, 'telemetry provider failed');
      }
    }
    return record as TelemetryRecord;
  }

  /** Stores a peer's record if it is newer than what we have. Returns true if stored. */
  accept(record: TelemetryRecord): boolean {
    const prev = this.#latest.get(record.peerId);
    if (prev && prev.seq >= record.seq && prev.ts >= record.ts) return false;
    this.#latest.set(record.peerId, record);
    this.emit('record', record);
    return true;
  }

  /** The latest record of a peer. */
  latest(peerId: string): TelemetryRecord | undefined {
    return this.#latest.get(peerId);
  }

  /** Forgets a peer (revoked). */
  forget(peerId: string): void {
    this.#latest.delete(peerId);
  }
}
