/**
 * `plexus upgrade --file PATH | --url URL --sha256 HEX | --rollback` on this host
 * (src/install/upgrade.ts does the work; docs/install.md).
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Command, Option } from 'commander';
import { dataPaths } from '../config/paths.ts';
import type { AgentHealth } from '../install/upgrade.ts';
import { socketClient } from './client.ts';
import { CliError, UsageError } from './errors.ts';
import { examples } from './examples.ts';

/** Asks the local agent (node.status over its socket) once, within 2 s. */
export async function probeLocal(data: string): Promise<AgentHealth | undefined> {
  const signal = AbortSignal.timeout(2_000);
  const s = (await socketClient(dataPaths(data).socket).call('node.status', {}, { signal })) as {
    version: string;
    peers: { online: number };
  };
  return { version: s.version, peersOnline: s.peers.online };
}

/** Polls the local agent until it answers or `timeoutMs` passes. */
export async function localHealth(data: string, timeoutMs: number): Promise<AgentHealth | undefined> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const h = await probeLocal(data).catch(() => undefined);
    if (h) return h;
    await new Promise((r) => setTimeout(r, 250));
  }
  return undefined;
}

/** Registers `upgrade`. */
export function registerUpgrade(program: Command): void {
  program
    .command('upgrade')
    .description('upgrade this host to a signed release, with a health check and automatic rollback')
    .option('--file <path>', 'a release tarball, with SHA256SUMS and SHA256SUMS.sig beside it')
    .option('--url <url>', 'download the release (SHA256SUMS and .sig from the same folder)')
    .option('--sha256 <hex>', 'the sha256 the tarball must have (required with --url)')
    .option('--rollback', 'go back to the previous release')
    .option('--max-parallel <n>', 'with --node: upgrade this many nodes at a time', '1')
    .addOption(
      new Option('--status-file <path>', 'write progress as JSON (the upgrader the agent starts)').hideHelp(),
    )
    .addHelpText(
      'after',
      examples(
        'sudo plexus upgrade --file plexus-0.2.0-linux-x64.tar.gz',
        'sudo plexus upgrade --url https://example.com/plexus-0.2.0-linux-x64.tar.gz --sha256 9f86d0…',
        'plexus upgrade --node all --file plexus-0.2.0-linux-x64.tar.gz --max-parallel 2',
      ),
    )
    .action(async (opts: UpgradeFlags, cmd: Command) => {
      const node = (cmd.optsWithGlobals() as { node?: string }).node;
      if (node) {
        if (!opts.file) throw new UsageError('upgrade --node needs --file PATH (the release to send)');
        const n = Number(opts.maxParallel);
        if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError('--max-parallel must be 1 to 64');
        const { fleetUpgrade } = await import('./fleet-upgrade.ts');
        return fleetUpgrade(cmd, node, opts.file, n);
      }
      if (!opts.statusFile) {
        await upgradeHere(opts);
        return;
      }
      // Started by an agent for a release it received: report how it went, for node.upgrade.status.
      const { writeStatus } = await import('../install/index.ts');
      try {
        const r = await upgradeHere(opts);
        writeStatus(opts.statusFile, { state: 'ok', from: r.from, to: r.to, downtimeMs: r.downtimeMs });
      } catch (err) {
        const e = err as { code?: string; message: string };
        writeStatus(opts.statusFile, {
          state: e.code === 'ROLLED_BACK' ? 'rolled_back' : 'failed',
          message: e.message,
        });
        throw err;
      }
    });
}

interface UpgradeFlags {
  file?: string;
  url?: string;
  sha256?: string;
  rollback?: boolean;
  maxParallel: string;
  statusFile?: string;
}

/** Upgrades (or rolls back) this host and prints the outcome. */
async function upgradeHere(opts: UpgradeFlags): Promise<import('../install/upgrade.ts').UpgradeResult> {
  const modes = [opts.file, opts.url, opts.rollback].filter(Boolean).length;
  if (modes !== 1)
    throw new UsageError('upgrade: give one of --file PATH, --url URL --sha256 HEX, or --rollback');
  if (opts.url && !opts.sha256)
    throw new UsageError('upgrade --url needs --sha256 HEX (the published checksum)');
  if (opts.sha256 && !/^[0-9a-fA-F]{64}$/.test(opts.sha256))
    throw new UsageError('--sha256 must be 64 hex digits');
  if (process.getuid?.() !== 0) throw new CliError('plexus upgrade changes the system: run it as root');
  // A release is read by everyone, like /usr (apps may run its Node); main.ts's 077 is for DATA.
  process.umask(0o022);
  const m = await import('../install/index.ts');
  const layout = m.installLayout();
  const systemd = {
    restart: async () => {
      // A crash-looping release may have used up the unit's start limit: clear it first, or
      // the restart that puts the old version back would be refused.
      await promisify(execFile)('systemctl', ['reset-failed', m.UNIT_NAME], { timeout: 10_000 }).catch(
        () => {},
      );
      await promisify(execFile)('systemctl', ['restart', m.UNIT_NAME], { timeout: 120_000 });
    },
    restarts: async () => {
      const { stdout } = await promisify(execFile)(
        'systemctl',
        ['show', '--property=NRestarts', '--value', m.UNIT_NAME],
        { timeout: 10_000 },
      );
      const n = Number(stdout.trim());
      return stdout.trim() && Number.isInteger(n) ? n : undefined;
    },
  };
  // Without systemd, the agent runs under packaging/supervisor/plexus-supervise (install.ts).
  const service = m.serviceKind() === 'systemd' ? systemd : m.supervisorControl();
  const c = {
    ...service,
    probe: () => probeLocal(layout.data),
    log: (l: string) => process.stdout.write(`${l}\n`),
  };
  let result: import('../install/upgrade.ts').UpgradeResult;
  if (opts.rollback) {
    result = await m.rollback(layout, c);
  } else if (opts.file) {
    result = await m.upgradeFromFile(layout, opts.file, m.proofBeside(opts.file, opts.sha256), c);
  } else {
    const url = opts.url as string;
    const name = new URL(url).pathname.split('/').pop() ?? '';
    if (!/^plexus-[0-9A-Za-z.-]+-linux-[a-z0-9]+\.tar\.gz$/.test(name)) {
      throw new UsageError(
        `--url must name a release tarball (plexus-VERSION-linux-ARCH.tar.gz), not '${name.slice(0, 60)}'`,
      );
    }
    const dir = join(layout.releases, `.download-${process.pid}`);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      await m.downloadRelease(url, join(dir, name), m.MAX_RELEASE_BYTES);
      await m.downloadRelease(new URL('SHA256SUMS', url).href, join(dir, 'SHA256SUMS'), 64 * 1024);
      await m.downloadRelease(new URL('SHA256SUMS.sig', url).href, join(dir, 'SHA256SUMS.sig'), 4096);
      result = await m.upgradeFromFile(
        layout,
        join(dir, name),
        m.proofBeside(join(dir, name), opts.sha256),
        c,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(
    `plexus ${result.from ?? '?'} -> ${result.to}: healthy and back in the mesh; agent down ${(result.downtimeMs / 1000).toFixed(1)} s\n`,
  );
  return result;
}
