/**
 * A real systemd for tests, on a host whose PID 1 is not systemd: a Debian bookworm minbase
 * rootfs (debootstrap, from the machine's configured Debian mirror, ~80 s once) cached outside
 * the repository, booted with `systemd-nspawn -b` and driven with `nsenter`. The rootfs is built
 * once under a lock, so concurrent test runs share it, and each boot writes only to a tmpfs
 * overlay (`--volatile=overlay`), so it stays pristine. The repository and its Node are
 * bind-mounted read-only at their own paths, so code and commands run inside unchanged.
 *
 *   const why = await nspawnUnavailableReason();   // a printed skip reason, or undefined
 *   const box = await bootContainer();
 *   const out = await box.exec(['systemctl', 'is-system-running']);
 *   await box.stop();
 *
 * Needs root, systemd-nspawn (package systemd-container) and debootstrap; when they are missing
 * it installs them with apt-get, and gives a reason to skip when it cannot.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Where the rootfs is cached: outside the repository, shared by every checkout. */
export const ROOTFS = process.env.PLEXUS_TEST_ROOTFS ?? '/var/cache/plexus-test/rootfs-bookworm';
const REPO = resolve(import.meta.dirname, '..', '..');

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** The Debian mirror apt is configured with here (deb822 or one-line sources). */
export function configuredMirror(): string {
  const files = ['/etc/apt/sources.list']
    .concat(
      existsSync('/etc/apt/sources.list.d')
        ? readdirSync('/etc/apt/sources.list.d').map((f) => `/etc/apt/sources.list.d/${f}`)
        : [],
    )
    .filter((f) => /\.(list|sources)$/.test(f) && existsSync(f));
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const m =
      /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(text) ??
      /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+bookworm\b/m.exec(text);
    if (m) return m[1];
  }
  return 'http://deb.debian.org/debian';
}

/**
 * Why a container cannot run here (printed as the skip reason), or undefined. Installs the
 * tools when they are missing and it can; builds (or waits for) the cached rootfs.
 */
export async function nspawnUnavailableReason(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'systemd-nspawn needs root';
  if (!has('systemd-nspawn') || !has('debootstrap') || !has('nsenter')) {
    const r = spawnSync('apt-get', ['install', '-y', 'systemd-container', 'debootstrap', 'util-linux'], {
      stdio: 'ignore',
      timeout: 600_000,
    });
    if (r.status !== 0 || !has('systemd-nspawn') || !has('debootstrap'))
      return 'systemd-nspawn or debootstrap is missing and apt-get could not install them (package systemd-container)';
  }
  try {
    await ensureRootfs();
  } catch (err) {
    return `cannot build the Debian rootfs for systemd-nspawn: ${(err as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

/** Builds the rootfs once (debootstrap into a temporary folder, renamed when complete). */
export async function ensureRootfs(): Promise<string> {
  if (existsSync(join(ROOTFS, 'usr/lib/systemd/systemd'))) return ROOTFS;
  mkdirSync(dirname(ROOTFS), { recursive: true });
  const lock = `${ROOTFS}.lock`;
  // mkdir is atomic: the first run builds, the others wait for it (a stale lock from a killed
  // build is taken over after 15 minutes).
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      if (existsSync(join(ROOTFS, 'usr/lib/systemd/systemd'))) return ROOTFS;
      const owner = Number(readFileSync(join(lock, 'pid'), 'utf8') || 0);
      if (owner && !existsSync(`/proc/${owner}`)) rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
  try {
    if (existsSync(join(ROOTFS, 'usr/lib/systemd/systemd'))) return ROOTFS;
    const tmp = `${ROOTFS}.building`;
    rmSync(tmp, { recursive: true, force: true });
    await execFileP(
      'debootstrap',
      ['--variant=minbase', '--include=systemd,systemd-sysv,dbus', 'bookworm', tmp, configuredMirror()],
      { timeout: 900_000, maxBuffer: 64 * 1024 * 1024 },
    );
    rmSync(ROOTFS, { recursive: true, force: true });
    renameSync(tmp, ROOTFS);
    return ROOTFS;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Runs commands inside the namespaces of `leader` (nsenter with `flags`), with a clean
 * environment; never rejects.
 */
export function nsenterExec(leader: number, flags: string[]): Container['exec'] {
  return (cmd, o = {}) =>
    new Promise((res) => {
      const env = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`);
      execFile(
        'nsenter',
        [
          '-t',
          String(leader),
          ...flags,
          '--',
          'env',
          '-i',
          'PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
          ...env,
          ...cmd,
        ],
        { timeout: o.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) =>
          res({ code: err ? Number((err as { code?: number }).code ?? 1) || 1 : 0, stdout, stderr }),
      );
    });
}

/** A booted container. */
export interface Container {
  /** PID of the container's systemd, as the host sees it. */
  leader: number;
  /** Runs a command inside (all namespaces of the container); never rejects. */
  exec(
    args: string[],
    opts?: { env?: Record<string, string>; timeoutMs?: number },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Powers it off (SIGKILL after 20 s). */
  stop(): Promise<void>;
}

/**
 * Where a host path is seen inside the container. Folders are bound at their own paths, except
 * under /tmp: a unit with `PrivateTmp=` (every app unit) gets an empty /tmp of its own and would
 * not find a checkout there (a CI clone in /tmp failed with 203/EXEC), so those go under /opt.
 */
export function inBox(hostPath: string): string {
  return hostPath === '/tmp' || hostPath.startsWith('/tmp/') ? `/opt/plexus-test-binds${hostPath}` : hostPath;
}

/** Folders the repository needs at run time: itself, and where its Node and node_modules live. */
export function repoBinds(): string[] {
  const paths = new Set([REPO]);
  for (const link of ['.tools', 'node_modules']) {
    const real = realpathSync(join(REPO, link));
    if (!real.startsWith(`${REPO}/`)) paths.add(real);
  }
  paths.add(dirname(realpathSync(process.execPath)));
  return [...paths];
}

/**
 * Boots the cached rootfs with the repository bound read-only, on the host's network or in the
 * network namespace `netns`; resolves once systemd is up.
 */
export async function bootContainer(
  opts: {
    binds?: string[];
    name?: string;
    netns?: string;
    netAdmin?: boolean;
    writable?: [host: string, box: string][];
  } = {},
): Promise<Container> {
  await ensureRootfs();
  const name = opts.name ?? `plexus-test-${process.pid}`;
  const args = [
    '-D',
    ROOTFS,
    '-b',
    '--register=no',
    '--keep-unit',
    '--volatile=overlay',
    `--machine=${name}`,
  ];
  for (const b of opts.binds ?? repoBinds()) args.push(`--bind-ro=${b}:${inBox(b)}`);
  // Host folders the box writes to and that outlive it (a cache), past the volatile overlay.
  for (const [host, box] of opts.writable ?? []) args.push(`--bind=${host}:${box}`);
  // A network namespace the test made (test/helpers/netns.ts) instead of the host's network.
  // netAdmin: the namespace is the container's to configure, as with --private-network (which
  // keeps CAP_NET_ADMIN; a namespace path alone does not): its agent writes nftables rules there.
  if (opts.netns) args.push(`--network-namespace-path=/run/netns/${opts.netns}`);
  if (opts.netns && opts.netAdmin) args.push('--capability=CAP_NET_ADMIN');
  const nspawn = spawn('systemd-nspawn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  nspawn.stdout.on('data', (c) => {
    output = (output + c).slice(-4000);
  });
  nspawn.stderr.on('data', (c) => {
    output = (output + c).slice(-4000);
  });
  let exited = false;
  nspawn.once('exit', () => {
    exited = true;
  });
  const stop = async () => {
    if (exited) return;
    nspawn.kill('SIGTERM'); // nspawn asks the container's systemd to power off
    const gone = new Promise((r) => nspawn.once('exit', r));
    const t = setTimeout(() => nspawn.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(t);
  };
  const leader = await findLeader(
    nspawn.pid!,
    () => exited,
    () => output,
  );
  const exec = nsenterExec(leader, ['-a']);
  // Up when systemd has finished starting (degraded counts: a minimal rootfs lacks some units).
  // A boot takes 2-5 s on a quiet machine; the bound is for a machine busy with other tests.
  const deadline = Date.now() + 180_000;
  for (;;) {
    const r = await exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs: 180_000 });
    if (/running|degraded/.test(r.stdout)) break;
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`the container did not boot: ${r.stdout.trim()} ${output.slice(-1000)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { leader, exec, stop };
}

/**
 * The container's PID 1: the child of systemd-nspawn that runs systemd. nspawn forks helpers
 * first (an outer child that exits once the inner one runs), so a child's pid alone is not it.
 */
async function findLeader(nspawn: number, exited: () => boolean, output: () => string): Promise<number> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !exited()) {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        if (ppid === nspawn && comm === 'systemd') return Number(d);
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`systemd-nspawn started no container: ${output().slice(-1000)}`);
}
