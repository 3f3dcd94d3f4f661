/** `plexus join TOKEN`: join an existing network. */
import type { Command } from 'commander';
import { collect, dataDirOf, wantsJson } from './context.ts';
import { printJson } from './output.ts';

/** Registers `join`. */
export function registerJoin(program: Command): void {
  program
    .command('join')
    .description('join a network with a token from `plexus token create`')
    .argument('<token>', 'the join token (plx2.…)')
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
    .option(
      '--behind-nat',
      'cannot be dialled, whatever dial-backs say: hold two relay reservations (mesh.reachability: behind-nat)',
    )
    .option('--tags <a,b>', 'extra tags for this node', (v: string) => v.split(',').filter(Boolean))
    .option('--json', 'print JSON')
    .action(async (token: string, opts, cmd: Command) => {
      const [{ dataPaths }, { joinNetwork }] = await Promise.all([
        import('../config/paths.ts'),
        import('../mesh/setup.ts'),
      ]);
      const paths = dataPaths(dataDirOf(cmd));
      const result = await joinNetwork({
        paths,
        token,
        name: opts.name,
        listen: opts.listen,
        door: opts.door,
        api: opts.api,
        socks: opts.socks,
        behindNat: opts.behindNat === true,
        tags: opts.tags,
      });
      if (wantsJson(cmd)) return printJson(result);
      process.stdout.write(
        `joined network ${result.networkId} as ${result.name} (${result.peerId})\n` +
          `  admitted by ${result.admittedBy}; ${result.members} members known\n` +
          `next: start the agent with 'plexus agent'\n`,
      );
    });
}
