/** The shape of DATA/config.yaml. Every field can also be set as `PLEXUS_SECTION__KEY`. */
import * as z from '../core/zod.ts';

const hostPort = z
  .string()
  .max(300)
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT, for example 127.0.0.1:7071');
const hostPortOrOff = z.union([z.literal('off'), hostPort]);
/** A DNS name as a Host header carries it; stored lower case, without a trailing dot. */
const dnsName = z
  .string()
  .max(254)
  .regex(
    /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/,
    'expected a DNS name, for example plexus.example.com',
  )
  .transform((name) => name.toLowerCase().replace(/\.$/, ''));

/** The validated agent configuration. */
export const configSchema = z.strictObject({
  node: z.strictObject({
    /** This node's name in the mesh: a DNS label. */
    name: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a node name is a DNS label: a-z, 0-9 and -, up to 63'),
    /** Free-form tags carried in the membership record. */
    tags: z.array(z.string().max(64)).max(32).default([]),
  }),
  mesh: z
    .strictObject({
      /** Multiaddrs the mesh listens on. */
      listen: z.array(z.string().max(256)).min(1).max(16).default(['/ip4/0.0.0.0/tcp/7070']),
      /** Extra multiaddrs to announce (a public address in front of NAT). */
      announce: z.array(z.string().max(256)).max(16).default([]),
      /** Serve circuit-relay-v2 to members when dialable. */
      relay: z.boolean().default(true),
      /**
       * Circuit-relay reservations to hold whatever reachability says (an override; 0: decided
       * by `reachability`, and a node behind NAT holds 2, so that losing one relay is no outage).
       */
      reservations: z.number().int().min(0).max(4).default(0),
      /**
       * Whether this node can be dialled: `auto` (members dial it back to find out; behind NAT it
       * holds 2 relay reservations by itself), or an override, `public` or `behind-nat`.
       */
      reachability: z.enum(['auto', 'public', 'behind-nat']).default('auto'),
      /**
       * The join door, where new nodes are admitted without the swarm key (docs/mesh.md): `auto`
       * (beside each mesh listen address; port 7073 when the mesh uses 7070, else any free port),
       * `off` (this node admits nobody), or multiaddrs such as `/ip4/0.0.0.0/tcp/7073`.
       */
      door: z
        .union([z.literal('auto'), z.literal('off'), z.array(z.string().max(256)).min(1).max(8)])
        .default('auto'),
    })
    .prefault({}),
  api: z
    .strictObject({
      /** HTTP API listen address, or `off`. */
      listen: hostPortOrOff.default('127.0.0.1:7071'),
      /** Largest accepted request body in bytes (uploads have their own limit). */
      maxBodyBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(1024 * 1024),
      /**
       * Host names the API answers to besides loopback names and IP literals, e.g. the name a
       * webhook sender or a remote CLI uses. Any other Host header gets 421 (DNS rebinding guard).
       * In the environment: a JSON array or a comma-separated list.
       */
      hosts: z
        .preprocess(
          (v) =>
            typeof v === 'string'
              ? v
                  .split(',')
                  .map((name) => name.trim())
                  .filter(Boolean)
              : v,
          z.array(dnsName).max(32),
        )
        .default([]),
      /**
       * The bearer token `GET /metrics` requires (Prometheus: `authorization: {credentials: …}`);
       * without one, /metrics is off. At least 16 printable characters, no spaces.
       */
      metricsToken: z
        .string()
        .min(16)
        .max(512)
        .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
        .optional(),
    })
    .prefault({}),
  socks: z
    .strictObject({
      /** SOCKS5 listen address, or `off`. Loopback by default so it is no open proxy. */
      listen: hostPortOrOff.default('127.0.0.1:7072'),
    })
    .prefault({}),
  tunnels: z
    .strictObject({
      /**
       * Where tunnels' data connections are accepted (docs/tunnels.md, data connections): `auto`
       * (the first mesh listen address, any free port), `HOST:PORT` (a fixed port to open in a
       * firewall), or `off` (every tunnel rides the mesh stream).
       */
      dataListen: z.union([z.literal('auto'), hostPortOrOff]).default('auto'),
      /**
       * The port on the data listener's host where this node, as a relay, takes splice
       * preambles from members behind NAT (docs/tunnels.md, spliced connections): `auto` (any
       * free port) or a fixed one (to open in a firewall next to the data port).
       */
      splicePort: z.union([z.literal('auto'), z.number().int().min(1).max(65535)]).default('auto'),
    })
    .prefault({}),
  telemetry: z
    .strictObject({
      /** Seconds between telemetry records. */
      intervalS: z.number().min(0.2).max(3600).default(5),
    })
    .prefault({}),
  panel: z
    .strictObject({
      /** External panel URL to POST heartbeats to (optional). */
      url: z.string().url().max(2048).optional(),
      /** Bearer token for the panel. */
      token: z.string().max(4096).optional(),
      /** Seconds between panel heartbeats. */
      intervalS: z.number().min(1).max(86400).default(60),
    })
    .prefault({}),
  workloads: z
    .strictObject({
      /** `process` (embedded supervisor, works anywhere) or `systemd`. */
      backend: z.enum(['process', 'systemd']).default('process'),
      /** Seconds an old release may drain its connections after a deploy moved traffic off it (issue 18). */
      drainS: z.number().int().min(0).max(3600).default(30),
      /**
       * `auto`: zero-downtime deploys through the kernel redirect of declared ports (nftables,
       * needs root) when it works here; `off`: a deploy stops the old release, then starts the new.
       */
      redirect: z.enum(['auto', 'off']).default('auto'),
      /** Allows apps to declare a port below 1024 (their redirect would take a system port's traffic). */
      lowPorts: z.boolean().default(false),
    })
    .prefault({}),
  shell: z
    .strictObject({
      /** Whom `plexus shell` runs as when the caller names nobody (created on first use); never root. */
      user: z
        .string()
        .regex(/^[a-z_][a-z0-9_-]{0,31}$/)
        .default('plexus-shell'),
      /** Seconds without input or output after which a session is hung up (default 30 min). */
      idleTimeout: z
        .number()
        .int()
        .min(10)
        .max(7 * 86400)
        .default(1800),
      /** Sessions (shell, exec -i/-t) this node runs at once. */
      maxSessions: z.number().int().min(1).max(1024).default(32),
      /** Record terminal sessions as asciicast files in DATA/recordings (output only, never keys). */
      record: z.boolean().default(false),
      /** Recordings kept; the oldest are deleted first. */
      recordKeep: z.number().int().min(1).max(100_000).default(200),
      /** One recording's size limit in bytes; past it the session goes on unrecorded. */
      recordMaxBytes: z
        .number()
        .int()
        .min(64 * 1024)
        .max(16 * 1024 ** 3)
        .default(64 * 1024 ** 2),
    })
    .prefault({}),
  log: z
    .strictObject({
      /** pino level. */
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
    })
    .prefault({}),
});

/** Validated configuration. */
export type Config = z.infer<typeof configSchema>;
/** Configuration as written by a user (defaults optional). */
export type ConfigInput = z.input<typeof configSchema>;
