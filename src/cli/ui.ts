/**
 * `plexus ui [--api URL] [--key FILE] [--listen 127.0.0.1:7073] [--no-open]`: the dashboard,
 * served on this machine and signing locally with the operator key (issue 17, docs/ui.md). It
 * reaches the fleet the way the remote CLI does (any agent's API, or this machine's agent), so
 * NAT'd nodes are reached through whichever agent relays for them. Light at the top: the server
 * and the signing client load only when the verb runs.
 */
import type { Command } from 'commander';
import { dataPaths } from '../config/paths.ts';
import { dataDirOf } from './context.ts';
import { UsageError } from './errors.ts';

/** The server's module, loaded when the verb runs. */
const UI_LAUNCH = './ui/launch.ts';

/** Registers `ui`. */
export function registerUi(program: Command): void {
  program
    .command('ui')
    .description('the dashboard: serve it on this machine (loopback) and open it in a browser')
    .option('--listen <host:port>', 'where to serve it (loopback only)', '127.0.0.1:7073')
    .option('--no-open', 'print the address instead of opening a browser')
    .action(async (opts: { listen: string; open: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { key?: string; node?: string };
      if (g.node) throw new UsageError('plexus ui shows every node; pick one on the page instead of --node');
      const paths = dataPaths(dataDirOf(cmd));
      const api = process.env.PLEXUS_API || undefined;
      if (api && !/^https?:\/\/[^/\s]+\/?$/.test(api))
        throw new UsageError(`--api/PLEXUS_API must look like http://HOST:PORT (got '${api}')`);
      const keyFile = g.key ?? process.env.PLEXUS_KEY ?? paths.adminKey;
      // Not a literal import: the agent's bundle (built from main.ts, run only for `plexus agent`)
      // then leaves the whole server out; with it inside, an idle agent held ~4 MB more
      // (bench/idle.ts against main, 5 agents a side).
      const { runUi } = (await import(UI_LAUNCH)) as typeof import('./ui/launch.ts');
      await runUi({ listen: opts.listen, open: opts.open, api, keyFile, paths });
    });
}
