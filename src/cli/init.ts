/** `plexus init`: create a new network on this server. */
import type { Command } from 'commander';
import { collect, dataDirOf, wantsJson } from './context.ts';
import { printJson } from './output.ts';

/** Registers `init`. */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a new network with this server as its first node and admin')
    .requiredOption('--name <name>', 'this node name (a DNS label)')
    .option('--listen <multiaddr>', 'mesh listen address (repeatable)', collect, [])
    .option(
      '--door <multiaddr|off>',
      'join door listen address (repeatable; default: port 7073 beside the mesh)',
      collect,
      [],
    )
    .option('--api <host:port>', 'HTTP API address, or off (default 127.0.0.1:7071)')
    .option('--socks <host:port|off>', 'SOCKS5 proxy address, or off (default 127.0.0.1:7072)')
    .option('--tags <a,b>', 'tags for this node', (v: string) => v.split(',').filter(Boolean))
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const [{ dataPaths }, { initNetwork }] = await Promise.all([
        import('../config/paths.ts'),
        import('../mesh/setup.ts'),
      ]);
      const paths = dataPaths(dataDirOf(cmd));
      const result = initNetwork({
        paths,
        name: opts.name,
        listen: opts.listen,
        door: opts.door,
        api: opts.api,
        socks: opts.socks,
        tags: opts.tags,
      });
      if (wantsJson(cmd)) return printJson(result);
      process.stdout.write(
        `created network ${result.networkId}\n` +
          `  node     ${result.name} (${result.peerId})\n` +
          `  data dir ${result.dataDir}\n` +
          `next: start the agent with 'plexus agent${dd(cmd)}', then 'plexus token create${dd(cmd)}' for each server to join\n`,
      );
    });
}

function dd(cmd: Command): string {
  const d = (cmd.optsWithGlobals() as { dataDir?: string }).dataDir;
  return d ? ` --data-dir ${d}` : '';
}
