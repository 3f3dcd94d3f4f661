/**
 * Debian packages through apt-get (issue 18): what the host daemons and services are installed
 * with. An install that fails removes again every package it added (the packages it pulled in
 * included), so a failed `edge install` or `service install` leaves the node's package set as it
 * was; the error is apt's own one line (`E: Unable to locate package …`).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { APT_LOCK_TIMEOUT_S, APT_TIMEOUT_MS } from './constants.ts';
import { PackageError } from './errors.ts';

const execFileP = promisify(execFile);

/** apt and dpkg run non-interactively, in the C locale (their messages are what we quote). */
const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C', LANG: 'C' };

/** A Debian package name (Debian policy 5.6.1). */
export const PACKAGE_NAME_RE = /^[a-z0-9][a-z0-9+.-]{1,62}$/;

/** Why apt cannot be used here, or undefined when it can. */
export function aptUnavailableReason(): string | undefined {
  if (!existsSync('/usr/bin/apt-get') || !existsSync('/usr/bin/dpkg-query'))
    return 'apt-get is not on this host (plexus installs packages on Debian and Ubuntu only)';
  if (process.getuid?.() !== 0) return 'installing packages needs root; run the agent as root';
  return undefined;
}

/** dpkg-query's own format syntax (not template literals): name, status and version. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's syntax, not a template
const DPKG_FORMAT = '${Package}\t${db:Status-Status}\t${Version}\n';
// biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's syntax, not a template
const DPKG_ONE = '${db:Status-Status}\t${Version}';

/** Installed packages and their versions, from dpkg's database. */
export async function installedPackages(): Promise<Map<string, string>> {
  const { stdout } = await execFileP('dpkg-query', ['-W', '-f', DPKG_FORMAT], {
    env: APT_ENV,
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [name, status, version] = line.split('\t');
    // Half-installed and unpacked packages count: a failed install may leave them behind.
    if (name && status && status !== 'not-installed' && status !== 'config-files')
      out.set(name, version ?? '');
  }
  return out;
}

/** The version of an installed package, or undefined. */
export async function installedVersion(pkg: string): Promise<string | undefined> {
  try {
    const { stdout } = await execFileP('dpkg-query', ['-W', '-f', DPKG_ONE, pkg], {
      env: APT_ENV,
    });
    const [status, version] = stdout.split('\t');
    return status === 'installed' ? version : undefined;
  } catch {
    return undefined;
  }
}

/** The version apt would install, or undefined when no source has the package. */
export async function candidateVersion(pkg: string): Promise<string | undefined> {
  const { stdout } = await execFileP('apt-cache', ['policy', pkg], { env: APT_ENV }).catch(() => ({
    stdout: '',
  }));
  const m = /Candidate:\s*(\S+)/.exec(stdout);
  return m && m[1] !== '(none)' ? m[1] : undefined;
}

/**
 * Installs `packages` and returns the ones this call added (dependencies included). On failure
 * it purges what it added and throws a PackageError with apt's reason.
 */
export async function aptInstall(packages: string[], signal?: AbortSignal): Promise<string[]> {
  const why = aptUnavailableReason();
  if (why) throw new PackageError('APT_MISSING', why);
  for (const p of packages)
    if (!PACKAGE_NAME_RE.test(p))
      throw new PackageError('APT_FAILED', `bad package name '${p.slice(0, 64)}'`);
  const before = await installedPackages();
  try {
    await apt(['install', '-y', '--no-install-recommends', ...packages], signal);
  } catch (err) {
    const added = await addedSince(before);
    if (added.length) await aptRemove(added, true).catch(() => {});
    throw err;
  }
  return addedSince(before);
}

/** Removes packages (`purge` also deletes their configuration), then what only they needed. */
export async function aptRemove(packages: string[], purge: boolean): Promise<void> {
  if (!packages.length) return;
  await apt([purge ? 'purge' : 'remove', '-y', ...packages]);
  await apt(['autoremove', '-y', ...(purge ? ['--purge'] : [])]).catch(() => {});
}

async function addedSince(before: Map<string, string>): Promise<string[]> {
  const now = await installedPackages();
  return [...now.keys()].filter((p) => !before.has(p)).sort();
}

/**
 * The argv that runs apt-get. Under systemd it runs in a transient unit of its own: the agent's
 * unit (packaging/systemd/plexus.service) makes the system read-only to the agent and its
 * children (ProtectSystem=strict), so apt inside it could not write /usr or dpkg's database.
 * `--pipe --wait` keep its output and exit status ours. Not exercised by the tests (no systemd
 * as PID 1 there).
 */
export function aptArgv(args: string[], systemd = existsSync('/run/systemd/system')): string[] {
  const apt = ['apt-get', '-q', '-o', `DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT_S}`, ...args];
  if (!systemd) return apt;
  const env = ['DEBIAN_FRONTEND=noninteractive', 'LC_ALL=C', 'LANG=C'].map((e) => `--setenv=${e}`);
  return [
    'systemd-run',
    '--pipe',
    '--wait',
    '--collect',
    '--quiet',
    '--service-type=exec',
    ...env,
    '--',
    ...apt,
  ];
}

async function apt(args: string[], signal?: AbortSignal): Promise<void> {
  try {
    const [file, ...argv] = aptArgv(args);
    await execFileP(file, argv, {
      env: APT_ENV,
      timeout: APT_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
      signal,
    });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string; killed?: boolean };
    throw new PackageError(
      'APT_FAILED',
      `apt-get ${args[0]} failed: ${oneLine(e.stderr, e.stdout, e.message)}`,
    );
  }
}

/** apt's own reason in one line: its last `E:` line, else the last line it printed. */
export function oneLine(...texts: (string | undefined)[]): string {
  const lines = texts
    .flatMap((t) => (t ?? '').split('\n'))
    .map((l) => l.trim())
    .filter(Boolean);
  const e = lines.filter((l) => l.startsWith('E:'));
  return (e.at(-1) ?? lines.at(-1) ?? 'no output').slice(0, 300);
}
