/**
 * The full telemetry record (docs/telemetry.md), validated field by field at the gossip
 * boundary. Every number is finite and bounded, every string and list is capped, so that one
 * record stays well under the 16 KiB limit and a hostile member cannot make us store junk.
 *
 * Unknown keys are stripped rather than rejected: during a rolling upgrade a newer agent may add
 * a field, and its older peers should keep seeing its health instead of dropping every record.
 * Stripping still means nothing unvalidated is ever stored or shown.
 */
import * as z from '../core/zod.ts';

const finite = z.number().finite();
/** A non-negative measurement that may be unknown (`null`) when its source could not be read. */
const gauge = (max: number) => finite.min(0).max(max).nullable();

/** Status of one app as gossiped; mirrors the workload manager's states. */
export const appStatusSchema = z.enum(['deploying', 'running', 'stopped', 'failed', 'crashloop']);

/** One app in a record. */
export const telemetryAppSchema = z.strictObject({
  name: z.string().min(1).max(63),
  status: appStatusSchema,
  pid: z
    .number()
    .int()
    .min(1)
    .max(2 ** 31)
    .nullable(),
  cpuPct: gauge(100_000),
  memMb: gauge(16 * 1024 * 1024),
  restarts: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31),
  release: z.string().max(64).nullable(),
});

/** One container of a Docker or Podman engine on the node (issue 18), beside the apps. */
export const telemetryContainerSchema = z.strictObject({
  /** The short id (12 hex digits), as `docker ps` shows it. */
  id: z.string().regex(/^[0-9a-f]{12}$/),
  name: z.string().max(63),
  image: z.string().max(96),
  state: z.enum(['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead', 'unknown']),
  health: z.enum(['healthy', 'unhealthy', 'starting', 'none']),
  cpuPct: gauge(100_000),
  memMb: gauge(16 * 1024 * 1024),
});

/**
 * The most containers one record carries (also bounded to 4 KiB of them by the collector); those
 * left out are counted in `containersOmitted`.
 */
export const MAX_RECORD_CONTAINERS = 24;

/** The most apps one record carries; 64 apps × ~150 bytes stays far below 16 KiB. */
export const MAX_RECORD_APPS = 64;
/** The most exposed services one record carries. */
export const MAX_RECORD_SERVICES = 64;

/** The most domains with a certificate problem one record names (the rest are counted). */
export const MAX_RECORD_CERT_PROBLEMS = 4;
/** A certificate problem's text in a record is cut to this. */
export const MAX_RECORD_CERT_ERROR = 100;

/** A complete telemetry record. */
export const telemetryRecordSchema = z.object({
  node: z.string().min(1).max(63),
  peerId: z.string().min(1).max(128),
  seq: z.number().int().nonnegative(),
  ts: z.number().int().positive(),
  version: z.string().max(64),
  uptimeS: finite.min(0).max(100 * 365 * 86400),
  addrs: z.array(z.string().max(512)).max(32).optional(),
  /** Where this node's join door listens (for tokens made on other members). */
  door: z.array(z.string().max(512)).max(8).optional(),
  /** The newest swarm-key epoch this node holds, in use or pending (swarm-rotation.ts). */
  swarmEpoch: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31)
    .optional(),
  reach: z.enum(['direct', 'relayed']),
  /**
   * Whether this node can be dialled, and the addresses members saw its connections come from
   * (a NAT gateway's): a hole punch dials nothing else (punch.ts).
   */
  nat: z
    .strictObject({
      status: z.enum(['public', 'behind-nat', 'unknown']),
      observed: z.array(z.string().max(64)).max(4),
    })
    .optional(),
  cpu: z.strictObject({
    pct: gauge(100),
    cores: z.number().int().min(1).max(65_536),
    load: z.tuple([gauge(1e6), gauge(1e6), gauge(1e6)]),
  }),
  mem: z.strictObject({ usedMb: gauge(1e9), totalMb: gauge(1e9) }),
  disk: z.strictObject({ usedGb: gauge(1e9), totalGb: gauge(1e9) }),
  net: z.strictObject({ rxBps: gauge(1e13), txBps: gauge(1e13) }),
  apps: z.array(telemetryAppSchema).max(MAX_RECORD_APPS),
  services: z
    .array(z.strictObject({ name: z.string().min(1).max(63), port: z.number().int().min(1).max(65_535) }))
    .max(MAX_RECORD_SERVICES),
  /**
   * The edge (issue 18): how many domains it serves and the first few with a certificate
   * problem; absent on a node without an edge. At most ~2 KiB, to keep the record under 16 KiB.
   */
  edge: z
    .strictObject({
      domains: z.number().int().min(0).max(100_000),
      certProblems: z
        .array(
          z.strictObject({
            host: z
              .string()
              .min(1)
              .max(253)
              .regex(/^[a-z0-9.-]+$/),
            app: z.string().min(1).max(63),
            cert: z.enum(['error', 'expiring']),
            // Printed by `top` and `peers` on operators' terminals: no control characters.
            error: z
              .string()
              .max(MAX_RECORD_CERT_ERROR)
              .regex(/^[^\x00-\x1f\x7f-\x9f]*$/),
          }),
        )
        .max(MAX_RECORD_CERT_PROBLEMS),
    })
    .optional(),
  /** Containers, on a node with a Docker or Podman socket only (absent elsewhere and from older agents). */
  containers: z.array(telemetryContainerSchema).max(MAX_RECORD_CONTAINERS).optional(),
  /** Containers the engine listed that the record left out (the caps above). */
  containersOmitted: z.number().int().min(0).max(1_000_000).optional(),
});

/** One container in a record. */
export type TelemetryContainer = z.infer<typeof telemetryContainerSchema>;
/** One app's figures in a record. */
export type TelemetryApp = z.infer<typeof telemetryAppSchema>;
/** A complete, validated telemetry record. */
export type FullTelemetryRecord = z.infer<typeof telemetryRecordSchema>;
