/** `plexus service install|ls|rm`: Redis, PostgreSQL and Node.js on the node (issue 18, docs/edge.md). */
import { type Command, Option } from 'commander';
import { agentOf, wantsJson } from './context.ts';
import { printJson, printTable } from './output.ts';

interface ServiceView {
  name: string;
  version: string | null;
  state: string;
  supervisor: string | null;
  added: string[];
  apps: string[];
  granted?: { app: string; role: string; database: string; env: string[]; pendingRestart: boolean };
}

/** Registers `service`. */
export function registerServices(program: Command): void {
  const service = program
    .command('service')
    .description('services apps need (redis, postgresql, node), installed with apt and kept running');
  service
    .command('install')
    .description(
      'install a service with apt and run it (admin); postgresql --for APP makes a role and database for APP',
    )
    .argument('<name>', 'redis, postgresql or node')
    // Shown as --version: the root's -V/--version would take it first (see takeServiceVersionFlag).
    .addOption(new Option('--service-version <version>').hideHelp())
    .addHelpText(
      'after',
      '\n  --version <version>  the version to install (what the apt sources have, e.g. 15)',
    )
    .option(
      '--for <app>',
      "postgresql: a role and database for APP, its credentials put into APP's encrypted env",
    )
    .option('--json', 'print JSON')
    .action(async (name: string, opts, cmd: Command) => {
      const args = {
        name,
        ...(opts.serviceVersion ? { version: opts.serviceVersion } : {}),
        ...(opts.for ? { for: opts.for } : {}),
      };
      const r = (await agentOf(cmd).call('services.install', args)) as ServiceView;
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`${r.name} ${r.version ?? ''} ${r.state}\n`);
      if (r.granted) {
        const g = r.granted;
        process.stdout.write(
          `database ${g.database} (role ${g.role}) for ${g.app}: ${g.env.join(', ')} set in its env` +
            `${g.pendingRestart ? `; applies on the next restart: plexus restart ${g.app}` : ''}\n`,
        );
      }
    });
  service
    .command('ls')
    .description('the services plexus installed, with version and state')
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) => {
      const rows = (await agentOf(cmd).call('services.list', {})) as ServiceView[];
      if (wantsJson(cmd)) return printJson(rows);
      if (!rows.length) {
        process.stdout.write('no services; install one with plexus service install redis|postgresql|node\n');
        return;
      }
      printTable(
        ['name', 'version', 'state', 'supervisor', 'apps'],
        rows.map((r) => [r.name, r.version, r.state, r.supervisor, r.apps.join(',') || null]),
      );
    });
  service
    .command('rm')
    .description('stop a service and remove the packages its install added (admin); data kept unless --purge')
    .argument('<name>', 'service name')
    .option('--purge', 'also delete its data and configuration')
    .option('--json', 'print JSON')
    .action(async (name: string, opts, cmd: Command) => {
      const r = (await agentOf(cmd).call('services.remove', { name, purge: Boolean(opts.purge) })) as {
        name: string;
        removed: string[];
        dataKept: boolean;
      };
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(
        `${r.name} stopped${r.removed.length ? `; removed ${r.removed.join(', ')}` : '; its packages were on the node before, kept'}${r.dataKept ? '; data kept' : ''}\n`,
      );
    });
}

/**
 * `plexus service install NAME --version V`: the root command's own `--version` would print the
 * plexus version and exit before the verb sees it, so on this one verb it is renamed in argv.
 */
export function takeServiceVersionFlag(argv: string[]): void {
  const verb = argv.indexOf('service');
  if (verb < 0 || argv[verb + 1] !== 'install') return;
  for (let i = verb + 2; i < argv.length && argv[i] !== '--'; i++) {
    if (argv[i] === '--version') argv[i] = '--service-version';
    else if (argv[i].startsWith('--version='))
      argv[i] = `--service-version=${argv[i].slice('--version='.length)}`;
  }
}
