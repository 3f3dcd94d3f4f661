/**
 * Loads DATA/config.yaml, applies `PLEXUS_SECTION__KEY` environment overrides and validates the
 * result once, at the boundary. Anything wrong is a one-line ConfigError naming the field.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import YAML from 'yaml';
import { ConfigError } from './errors.ts';
import { type Config, type ConfigInput, configSchema } from './schema.ts';

export { ConfigError } from './errors.ts';
export { type DataPaths, dataPaths, resolveDataDir } from './paths.ts';
export { agentPorts } from './ports.ts';
export { type Config, type ConfigInput, configSchema } from './schema.ts';

/** A config file is tiny; anything bigger is not ours. */
const MAX_CONFIG_BYTES = 256 * 1024;

/** Reads, overrides and validates the config at `path`. */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError(`no config at ${path}; run 'plexus init' or 'plexus join' first`);
    }
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`);
  }
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
    throw new ConfigError(`${path} is larger than ${MAX_CONFIG_BYTES} bytes`);
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text) ?? {};
  } catch (err) {
    throw new ConfigError(`${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${path} must be a YAML mapping`);
  }
  applyEnvOverrides(raw as Record<string, unknown>, env);
  return parseConfig(raw, path);
}

/** Validates a config object; `source` names it in errors. */
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.join('.') || '(root)';
    throw new ConfigError(`${source}: ${where}: ${issue.message}`);
  }
  return result.data;
}

/** Writes a config file (mode 0600: it may hold the panel token). */
export function writeConfig(path: string, config: ConfigInput): void {
  writeFileSync(path, YAML.stringify(config), { mode: 0o600 });
}

/**
 * `PLEXUS_SOCKS__LISTEN=off` sets `socks.listen`. Section and key match case-insensitively with
 * underscores ignored, so `PLEXUS_TELEMETRY__INTERVAL_S` sets `telemetry.intervalS`. Values are
 * parsed as JSON when they look like it (numbers, booleans, arrays), else taken as strings.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const shape = configSchema.shape as Record<string, { def?: unknown }>;
  const norm = (s: string) => s.toLowerCase().replaceAll('_', '');
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('PLEXUS_') || value === undefined) continue;
    const parts = name.slice('PLEXUS_'.length).split('__');
    if (parts.length !== 2) continue;
    const section = Object.keys(shape).find((k) => norm(k) === norm(parts[0]));
    if (!section) continue;
    const sectionKeys = sectionFieldNames(section);
    const key = sectionKeys.find((k) => norm(k) === norm(parts[1]));
    if (!key) throw new ConfigError(`${name}: ${section} has no setting '${parts[1].toLowerCase()}'`);
    if (typeof raw[section] !== 'object' || raw[section] === null) raw[section] = {};
    const target = raw[section] as Record<string, unknown>;
    target[key] = parseEnvValue(value);
  }
}

function sectionFieldNames(section: string): string[] {
  // Unwrap prefault/default wrappers to reach the object's shape.
  let schema: unknown = (configSchema.shape as Record<string, unknown>)[section];
  for (let i = 0; i < 4 && schema; i++) {
    const s = schema as { shape?: Record<string, unknown>; def?: { innerType?: unknown } };
    if (s.shape) return Object.keys(s.shape);
    schema = s.def?.innerType;
  }
  return [];
}

function parseEnvValue(value: string): unknown {
  if (/^(true|false|null|-?\d+(\.\d+)?|\[.*\]|\{.*\})$/s.test(value.trim())) {
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  }
  return value;
}
