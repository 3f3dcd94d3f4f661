/** `plexus install` (what install.sh runs) and `plexus uninstall`: docs/install.md. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { collect } from './context.ts';
import { CliError, UsageError } from './errors.ts';
import { examples } from './examples.ts';
import { localHealth } from './upgrade.ts';

/** The unpacked release this CLI runs from (install.sh's folder). */
const RELEASE_ROOT = resolve(import.meta.dirname, '..', '..');

const needRoot = (verb: string, dryRun: boolean) => {
  if (!dryRun && process.getuid?.() !== 0)
    throw new CliError(`plexus ${verb} changes the system: run it as root (or with --dry-run)`);
};

/** Registers `install` and `uninstall`. */
export function registerInstall(program: Command): void {
  program
    .command('install')
    .description('install this unpacked release as the plexus service (what install.sh runs)')
    .option('--init <name>', 'create a new network with this server as its first node')
    .option('--token <token>', 'join a network with a token from `plexus token create`')
    .option('--name <name>', "this node's name when joining (default: the host name)")
    .option('--tags <a,b>', 'tags for this node', (v: string) => v.split(',').filter(Boolean))
    .option('--listen <multiaddr>', 'mesh listen address, for init/join (repeatable)', collect, [])
    .option('--api <host:port>', 'HTTP API address or off, for init/join')
    .option('--socks <host:port|off>', 'SOCKS5 proxy address or off, for init/join')
    .option('--behind-nat', 'this server is behind NAT: reach the mesh through relays (for --token)')
    .option('--dry-run', 'print every file and command, change nothing')
    .addHelpText(
      'after',
      examples(
        'sudo ./install.sh --init web1',
        'sudo ./install.sh --token plx2.… --name web2 --tags eu',
        './install.sh --dry-run --init web1',
      ),
    )
    .action(async (opts: import('../install/install.ts').InstallOptions & { dryRun?: boolean }) => {
      if (opts.init && opts.token)
        throw new UsageError('install: give --init NAME or --token TOKEN, not both');
      if (opts.behindNat && !opts.token) throw new UsageError('install: --behind-nat goes with --token');
      if (!existsSync(join(RELEASE_ROOT, 'RELEASE'))) {
        throw new CliError(
          `plexus install runs from an unpacked release (${RELEASE_ROOT} has no RELEASE file); build one with scripts/release`,
        );
      }
      needRoot('install', Boolean(opts.dryRun));
      // A release is read by everyone, like /usr (apps may run its Node); main.ts's 077 is for DATA.
      process.umask(0o022);
      const m = await import('../install/index.ts');
      const manifest = m.readManifest(RELEASE_ROOT);
      m.checkPlatform(manifest, RELEASE_ROOT);
      const service = m.serviceKind();
      const layout = m.installLayout();
      const steps = m.installSteps(RELEASE_ROOT, manifest, layout, { ...opts, service });
      const log = (l: string) => process.stdout.write(`${l}\n`);
      const t0 = Date.now();
      const changed = m.runSteps(steps, { dryRun: Boolean(opts.dryRun), log });
      if (opts.dryRun) return;
      let h = await localHealth(layout.data, 60_000);
      // A node that joined is done once it is in the mesh: it sees a peer (within the same budget).
      for (let end = Date.now() + 60_000; h && opts.token && h.peersOnline === 0 && Date.now() < end; ) {
        await new Promise((r) => setTimeout(r, 500));
        h = (await localHealth(layout.data, 5_000)) ?? h;
      }
      const logs = service === 'systemd' ? 'journalctl -u plexus' : `${layout.data}/logs/supervisor.log`;
      if (!h)
        throw new CliError(
          `plexus ${manifest.version} is installed but the agent does not answer; see ${logs}`,
        );
      log(
        `plexus ${h.version} is active (${changed ? `${changed} changes` : 'nothing to change'}, ${((Date.now() - t0) / 1000).toFixed(1)} s), ${h.peersOnline} peers online`,
      );
      if (service === 'supervisor')
        log(
          `no systemd on this host: the agent runs under ${layout.current}/packaging/supervisor/plexus-supervise; nothing starts it at boot: run it from your init or the container's entrypoint`,
        );
    });

  program
    .command('uninstall')
    .description("stop and remove the service, the apps' units and users, and the binaries")
    .option('--keep-data', 'keep DATA (/var/lib/plexus) whole')
    .option('--purge', 'also remove the keys, logs and /etc/plexus (asks first, unless --yes)')
    .option('--yes', 'do not ask')
    .option('--dry-run', 'print every file and command, change nothing')
    .addHelpText(
      'after',
      examples(
        'sudo plexus uninstall --keep-data',
        'sudo plexus uninstall --purge --yes',
        'plexus uninstall --dry-run',
      ),
    )
    .action(async (opts: { keepData?: boolean; purge?: boolean; yes?: boolean; dryRun?: boolean }) => {
      if (opts.keepData && opts.purge)
        throw new UsageError('uninstall: --keep-data and --purge contradict each other');
      needRoot('uninstall', Boolean(opts.dryRun));
      // A release is read by everyone, like /usr (apps may run its Node); main.ts's 077 is for DATA.
      process.umask(0o022);
      const m = await import('../install/index.ts');
      const layout = m.installLayout();
      if (opts.purge && !opts.yes && !opts.dryRun) await confirmPurge(layout.data);
      const log = (l: string) => process.stdout.write(`${l}\n`);
      const steps = m.uninstallSteps(layout, { ...opts, service: m.serviceKind() });
      const changed = m.runSteps(steps, { dryRun: Boolean(opts.dryRun), log });
      if (!opts.dryRun) {
        const kept = opts.purge
          ? 'nothing kept'
          : opts.keepData
            ? `${layout.data} kept`
            : `keys and logs kept in ${layout.data}`;
        log(`plexus removed (${changed} changes; ${kept})`);
      }
    });
}

async function confirmPurge(data: string): Promise<void> {
  if (!process.stdin.isTTY)
    throw new UsageError('uninstall --purge deletes the node keys: confirm with --yes');
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const a = await rl.question(
    `This deletes ${data} with the node's keys and logs, and /etc/plexus. Type 'purge' to go on: `,
  );
  rl.close();
  if (a.trim() !== 'purge') throw new CliError('uninstall cancelled; nothing was removed');
}
