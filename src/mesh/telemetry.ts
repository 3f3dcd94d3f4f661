/**
 * The telemetry bus on `plexus/telemetry/1`: every node publishes a record every interval and
 * at once on demand (an app changed state); every node keeps the latest record per peer and
 * derives `online|suspect|down` from its age. The mesh fills the identity and reachability
 * fields; collectors registered with `addProvider` (system and app figures) fill the rest.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../logging/index.ts';
import { DOWN_INTERVALS, MAX_TELEMETRY_BYTES, ONLINE_INTERVALS } from './constants.ts';
import { type FullTelemetryRecord, telemetryRecordSchema } from './telemetry-schema.ts';

/** A telemetry record as gossiped and stored (docs/telemetry.md). */
export type TelemetryRecord = FullTelemetryRecord;
/** The identity and reachability fields the mesh fills; providers add the figures. */
export type TelemetryBase = Pick<
  TelemetryRecord,
  'node' | 'peerId' | 'version' | 'uptimeS' | 'addrs' | 'door' | 'reach'
>;
/** Why a received record was dropped (a label of the rejection counter). */
export type TelemetryDropReason = 'not-member' | 'malformed' | 'forged';

/** A peer's liveness from the age of its last record. */
export type PeerState = 'online' | 'suspect' | 'down';

/** Derives the state from the age of the last sighting (docs/telemetry.md: 3 and 6 intervals). */
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
  const parsed = telemetryRecordSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

/** Events of the bus: `record` for every accepted record from a peer, `self` for each of ours. */
export interface TelemetryEvents {
  record: [TelemetryRecord];
  self: [TelemetryRecord];
}

/** Counters of the bus, exported as metrics. */
export interface TelemetryCounts {
  published: number;
  accepted: number;
  /** Valid records that were not newer than what we had (gossip duplicates). */
  ignored: number;
  rejected: Record<TelemetryDropReason, number>;
}

/** Local state of the bus: our own sequence and the latest record of each peer. */
export class TelemetryBus extends EventEmitter<TelemetryEvents> {
  readonly #latest = new Map<string, TelemetryRecord>();
  readonly #providers: TelemetryProvider[] = [];
  readonly #logger: Logger;
  /** Peers already warned about, so a misbehaving member cannot flood the log. */
  readonly #warned = new Set<string>();
  #self: TelemetryRecord | undefined;
  #seq = 0;
  /** Counters for /metrics. */
  readonly counts: TelemetryCounts = {
    published: 0,
    accepted: 0,
    ignored: 0,
    rejected: { 'not-member': 0, malformed: 0, forged: 0 },
  };

  constructor(logger: Logger) {
    super();
    this.#logger = logger;
  }

  /** Adds a provider of record fields. */
  addProvider(provider: TelemetryProvider): void {
    this.#providers.push(provider);
  }

  /** Builds this node's next record from the base fields and every provider. */
  async build(base: TelemetryBase): Promise<TelemetryRecord> {
    const record: Record<string, unknown> = { ...base, seq: ++this.#seq, ts: Date.now() };
    for (const p of this.#providers) {
      try {
        Object.assign(record, await p());
      } catch (err) {
        // A failing collector degrades the record; it must not stop the heartbeat.
        this.#logger.warn({ err }, 'telemetry provider failed');
      }
    }
    const checked = telemetryRecordSchema.safeParse(record);
    if (!checked.success && !this.#warned.has('self')) {
      // Peers would drop this record; say why once instead of failing silently every interval.
      this.#warned.add('self');
      this.#logger.warn({ issues: checked.error.issues.slice(0, 5) }, 'own telemetry record is invalid');
    }
    const built = record as TelemetryRecord;
    this.#self = built;
    this.counts.published++;
    this.emit('self', built);
    return built;
  }

  /** Our own latest record (undefined before the first publish). */
  self(): TelemetryRecord | undefined {
    return this.#self;
  }

  /** Counts a dropped record and warns once per sending peer (issue 4: logged once at warn). */
  reject(peerId: string, reason: TelemetryDropReason): void {
    this.counts.rejected[reason]++;
    const key = `${reason}:${peerId}`;
    if (this.#warned.has(key) || this.#warned.size > 10_000) return;
    this.#warned.add(key);
    this.#logger.warn(
      { peer: peerId, reason },
      'dropping a telemetry record (further ones from this peer are counted only)',
    );
  }

  /** Stores a peer's record if it is newer than what we have. Returns true if stored. */
  accept(record: TelemetryRecord): boolean {
    const prev = this.#latest.get(record.peerId);
    if (prev && prev.seq >= record.seq && prev.ts >= record.ts) {
      this.counts.ignored++;
      return false;
    }
    this.#latest.set(record.peerId, record);
    this.counts.accepted++;
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
