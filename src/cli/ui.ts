/**
 * `plexus ui [--api URL] [--key FILE] [--listen 127.0.0.1:7073] [--no-open]`: the dashboard,
 * served on this machine and signing locally with the operator key (issue 17, docs/ui.md). It
 * reaches the fleet the way the remote CLI does (any agent's API, or this machine's agent), so
 * NAT'd nodes are reached through whichever agent relays for them. Light at the top: the server
 * and the signing client load only when the verb runs.
 */
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { dataPaths } from '../config/paths.ts';
import type { AgentClient } from './client.ts';
import { dataDirOf } from './context.ts';
import { CliError, UsageError } from './errors.ts';

/** The asset builder (plain JavaScript beside the agent's bundler). */
const UI_BUNDLE = '../runtime/ui-bundle.mjs';
/** How long `plexus ui` waits for the first fleet snapshot before saying it cannot reach the fleet. */
const FIRST_SNAPSHOT_MS = 15_000;

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
      const started = Date.now();
      const [{ remoteClient }, { FleetHub }, { startUiServer }, { readKeyFile }, { uiAssets }] =
        await Promise.all([
          import('./remote-client.ts'),
          import('./ui/fleet.ts'),
          import('./ui/server.ts'),
          import('../crypto/ed25519.ts'),
          // Not a literal: the agent's bundle (built from main.ts) must not pull esbuild in.
          import(UI_BUNDLE) as Promise<typeof import('../runtime/ui-bundle.mjs')>,
        ]);
      let kid: string;
      try {
        kid = readKeyFile(keyFile).kid;
      } catch (err) {
        throw new CliError(
          `${(err as Error).message}; pass an operator key with --key FILE (create one with 'plexus operator keygen')`,
        );
      }
      // One signing client per node, each proving whom it talks to once and then reused.
      const clients = new Map<string, AgentClient>();
      const clientFor = (node?: string) => {
        const key = node ?? '';
        let c = clients.get(key);
        if (!c) {
          c = remoteClient({ url: api, socketPath: paths.socket, keyFile, dataDir: paths.dataDir, node });
          clients.set(key, c);
        }
        return c;
      };
      const fleet = new FleetHub(clientFor, kid);
      let assets: string;
      try {
        assets = await uiAssets(fileURLToPath(new URL('../..', import.meta.url)));
      } catch (err) {
        throw new CliError(
          `cannot build the dashboard's assets (${(err as Error).message}); run scripts/build`,
        );
      }
      const server = await startUiServer({ listen: opts.listen, assets, clientFor, fleet }).catch((err) => {
        throw new CliError(`cannot serve the dashboard on ${opts.listen}: ${(err as Error).message}`);
      });
      fleet.start();
      process.stdout.write(`plexus ui: ${server.url}\n`);
      process.stdout.write('(the link carries this launch’s secret: keep it to yourself; Ctrl-C stops)\n');
      if (opts.open) openBrowser(server.url);
      await fleet.ready(FIRST_SNAPSHOT_MS);
      const problem = fleet.snapshot.problem;
      if (problem) process.stderr.write(`plexus ui: cannot reach the fleet yet: ${problem}\n`);
      else
        process.stdout.write(`fleet of ${fleet.snapshot.nodes.length} nodes in ${Date.now() - started} ms\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      fleet.stop();
      await server.close();
    });
}

/** Opens the link in the desktop's browser; says so when there is none. */
function openBrowser(url: string): void {
  import('node:child_process').then(({ spawn }) => {
    const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
    child.once('error', () =>
      process.stderr.write('plexus ui: no browser to open here (xdg-open); open the link above yourself\n'),
    );
    child.unref();
  });
}
