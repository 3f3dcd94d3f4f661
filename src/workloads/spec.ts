/**
 * What an app runs: names, the run spec (command, port, health check, restart policy) and how a
 * deploy's flags, a bundle's plexus.yaml and the previous release combine into it. Validated
 * once, at the boundary, with zod.
 */
import * as z from '../core/zod.ts';
import { InvalidSpecError } from './errors.ts';

/** An app name is a DNS label: it doubles as the service name in the mesh (`api.web-2`). */
export const appNameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'an app name is a DNS label: a-z, 0-9 and -, up to 63');

/** A POSIX environment variable name. */
export const envNameSchema = z
  .string()
  .max(128)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an env name is letters, digits and _, not starting with a digit');

/** A TCP port an app may listen on. */
export const portSchema = z.number().int().min(1).max(65535);

/** `always` restarts on any exit, `on-failure` only on a non-zero exit or a signal, `never` never. */
export const restartPolicySchema = z.enum(['always', 'on-failure', 'never']);
/** Restart policy. */
export type RestartPolicy = z.infer<typeof restartPolicySchema>;

/** `http://:PORT/PATH`, `http://HOST:PORT/PATH` or `tcp:PORT`. */
export const healthSchema = z
  .string()
  .max(512)
  .regex(/^(https?:\/\/[^/\s]*:\d{1,5}(\/\S*)?|tcp:\d{1,5})$/, 'health is http://:PORT/PATH or tcp:PORT');

/** A parsed health check. */
export type HealthCheck =
  | { kind: 'http'; host: string; port: number; path: string; tls: boolean }
  | { kind: 'tcp'; host: string; port: number };

/** Parses a health check string (already shape-checked by `healthSchema`). */
export function parseHealth(text: string): HealthCheck {
  const tcp = /^tcp:(\d{1,5})$/.exec(text);
  if (tcp) return { kind: 'tcp', host: '127.0.0.1', port: checkPort(Number(tcp[1]), text) };
  const m = /^(https?):\/\/([^/\s]*):(\d{1,5})(\/\S*)?$/.exec(text);
  if (!m)
    throw new InvalidSpecError('BAD_HEALTH', `bad health check '${text}': use http://:PORT/PATH or tcp:PORT`);
  return {
    kind: 'http',
    tls: m[1] === 'https',
    host: m[2] === '' ? '127.0.0.1' : m[2],
    port: checkPort(Number(m[3]), text),
    path: m[4] ?? '/',
  };
}

function checkPort(port: number, text: string): number {
  if (port < 1 || port > 65535)
    throw new InvalidSpecError('BAD_HEALTH', `bad port in health check '${text}'`);
  return port;
}

/** The fields that a deploy flag, a manifest or an earlier release may set. */
export const runSpecFields = z.strictObject({
  /** Shell command run in the release directory (`exec`-ed by /bin/sh). */
  cmd: z.string().min(1).max(4096).optional(),
  /** The port the app listens on; exposed in the mesh under the app's name. */
  port: portSchema.optional(),
  /** Health check a new release must pass before it replaces the old one. */
  health: healthSchema.optional(),
  /** Restart policy. */
  restart: restartPolicySchema.optional(),
  /** Seconds the health check may take. */
  healthTimeoutS: z.number().min(1).max(3600).optional(),
  /** Plain (non-secret) env defaults carried by the bundle; app env vars override them. */
  env: z.record(envNameSchema, z.string().max(64 * 1024)).optional(),
});
/** Partial run spec from one source. */
export type RunSpecInput = z.infer<typeof runSpecFields>;

/** The effective run spec of a release. */
export interface RunSpec {
  cmd: string;
  port?: number;
  health?: string;
  restart: RestartPolicy;
  healthTimeoutS?: number;
  env: Record<string, string>;
}

/**
 * Combines the sources, first one wins: deploy flags, then the bundle's plexus.yaml, then the
 * previous release (so a redeploy without flags keeps its command), then defaults.
 */
export function resolveSpec(...sources: (RunSpecInput | undefined)[]): RunSpec {
  const pick = <K extends keyof RunSpecInput>(key: K): RunSpecInput[K] =>
    sources.find((s) => s?.[key] !== undefined)?.[key];
  const cmd = pick('cmd');
  if (!cmd) {
    throw new InvalidSpecError(
      'NO_COMMAND',
      "no command to run: pass --cmd \"…\" or put 'cmd:' in the bundle's plexus.yaml",
    );
  }
  const spec: RunSpec = { cmd, restart: pick('restart') ?? 'always', env: {} };
  const port = pick('port');
  if (port !== undefined) spec.port = port;
  const health = pick('health');
  if (health !== undefined) spec.health = health;
  const timeout = pick('healthTimeoutS');
  if (timeout !== undefined) spec.healthTimeoutS = timeout;
  // Bundle env merges across sources; the later (lower-priority) ones only fill gaps.
  for (const s of [...sources].reverse()) Object.assign(spec.env, s?.env ?? {});
  if (spec.health) parseHealth(spec.health);
  return spec;
}
