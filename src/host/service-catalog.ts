/**
 * The services `plexus service install` knows (issue 18): which Debian packages each one is, how
 * its daemon runs under either supervisor (the package's own unit under systemd; the same
 * command line as that unit under the agent's), how to tell it is ready, and its version.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { candidateVersion, installedVersion } from './apt.ts';
import type { DaemonSpec } from './daemon-spec.ts';
import { PackageError } from './errors.ts';

const execFileP = promisify(execFile);

/** A service plexus installs. */
export interface ServiceDef {
  name: string;
  describe: string;
  /** The packages to install for `version` (undefined: the distribution's default). */
  packages(version?: string): Promise<string[]>;
  /** Its daemon, when it has one (Node.js has none). */
  daemon?(): DaemonSpec;
  /** Answers once the daemon serves. */
  ready?(): Promise<boolean>;
  /** The installed version, or undefined when it is not installed. */
  version(): Promise<string | undefined>;
}

/** Debian's version without its epoch and revision: `5:7.0.15-1~deb12u10` → `7.0.15`. */
export function upstreamVersion(v: string): string {
  return v.replace(/^\d+:/, '').replace(/[-+~].*$/, '');
}

/** `pkg`, after checking that apt's candidate is `version` (a prefix such as `7` or `7.0`). */
async function pinned(pkg: string, version?: string): Promise<string[]> {
  if (version === undefined) return [pkg];
  const candidate = await candidateVersion(pkg);
  const up = candidate && upstreamVersion(candidate);
  if (!up || (up !== version && !up.startsWith(`${version}.`)))
    throw new PackageError(
      'APT_VERSION',
      `${pkg} ${version} is not available from this host's apt sources${up ? ` (they have ${up})` : ''}`,
    );
  return [pkg];
}

async function ok(cmd: string, args: string[], expect?: RegExp): Promise<boolean> {
  try {
    const { stdout } = await execFileP(cmd, args, { timeout: 5_000 });
    return expect ? expect.test(stdout) : true;
  } catch {
    return false;
  }
}

/** The newest PostgreSQL major installed (its server binaries under /usr/lib/postgresql). */
export function postgresMajor(): string | undefined {
  try {
    return readdirSync('/usr/lib/postgresql')
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a))[0];
  } catch {
    return undefined;
  }
}

const redis: ServiceDef = {
  name: 'redis',
  describe: 'Redis (redis-server), on 127.0.0.1:6379',
  packages: (version) => pinned('redis-server', version),
  daemon: () => ({
    name: 'redis',
    // Debian's unit runs it the same way; the agent needs it in the foreground.
    cmd: 'redis-server /etc/redis/redis.conf --daemonize no --supervised no',
    user: 'redis',
    cwd: '/var/lib/redis',
    dirs: [{ path: '/run/redis', owner: 'redis', mode: 0o2755, unitMakes: true }],
    unit: 'redis-server.service',
    sysv: 'redis-server',
  }),
  ready: () => ok('redis-cli', ['ping'], /PONG/),
  version: async () => {
    const v = await installedVersion('redis-server');
    return v && upstreamVersion(v);
  },
};

const postgresql: ServiceDef = {
  name: 'postgresql',
  describe:
    'PostgreSQL (Debian cluster VERSION/main), on 127.0.0.1:5432; --for APP makes a role and database',
  packages: async (version) => (version ? pinned(`postgresql-${version.split('.')[0]}`) : ['postgresql']),
  daemon: () => {
    const v = postgresMajor() ?? '15';
    return {
      name: 'postgresql',
      cmd: `/usr/lib/postgresql/${v}/bin/postgres -D /var/lib/postgresql/${v}/main -c config_file=/etc/postgresql/${v}/main/postgresql.conf`,
      user: 'postgres',
      cwd: '/var/lib/postgresql',
      dirs: [{ path: '/var/run/postgresql', owner: 'postgres', mode: 0o2775, unitMakes: true }],
      unit: `postgresql@${v}-main.service`,
      sysv: 'postgresql',
    };
  },
  ready: () => ok('pg_isready', ['-q', '-h', '/var/run/postgresql']),
  version: async () => {
    const major = postgresMajor();
    const v = major && (await installedVersion(`postgresql-${major}`));
    return v ? upstreamVersion(v) : undefined;
  },
};

const node: ServiceDef = {
  name: 'node',
  describe: 'Node.js (the nodejs package of the host apt sources), for apps that run on the system Node',
  packages: (version) => pinned('nodejs', version),
  version: async () => {
    const v = await installedVersion('nodejs');
    return v && upstreamVersion(v);
  },
};

/** Every service, by name. */
export const SERVICES: ReadonlyMap<string, ServiceDef> = new Map(
  [redis, postgresql, node].map((s) => [s.name, s]),
);
