/**
 * What `plexus ui` runs once its flags are checked (src/cli/ui.ts): the signing clients, the
 * fleet hub, the local server, the browser. One module behind one dynamic import, so that the
 * agent's bundle, which holds every verb, keeps all of it unevaluated.
 */
import { fileURLToPath } from 'node:url';
import type { DataPaths } from '../../config/paths.ts';
import { readKeyFile } from '../../crypto/ed25519.ts';
import type { AgentClient } from '../client.ts';
import { CliError } from '../errors.ts';
import { remoteClient } from '../remote-client.ts';
import { FleetHub } from './fleet.ts';
import { startUiServer } from './server.ts';

/** The asset builder (plain JavaScript beside the agent's bundler). */
const UI_BUNDLE = '../../runtime/ui-bundle.mjs';
/** How long `plexus ui` waits for the first fleet snapshot before saying it cannot reach the fleet. */
const FIRST_SNAPSHOT_MS = 15_000;

/** `plexus ui`'s checked options. */
export interface UiOptions {
  listen: string;
  open: boolean;
  /** An agent's API, or undefined for this machine's agent (its control socket). */
  api?: string;
  keyFile: string;
  paths: DataPaths;
}

/** Serves the dashboard until SIGINT or SIGTERM. */
export async function runUi(o: UiOptions): Promise<void> {
  const started = Date.now();
  let kid: string;
  try {
    kid = readKeyFile(o.keyFile).kid;
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
      c = remoteClient({
        url: o.api,
        socketPath: o.paths.socket,
        keyFile: o.keyFile,
        dataDir: o.paths.dataDir,
        node,
      });
      clients.set(key, c);
    }
    return c;
  };
  const fleet = new FleetHub(clientFor, kid);
  let assets: string;
  try {
    // Not a literal import: the agent's bundle (built from main.ts) must not pull esbuild in.
    const { uiAssets } = (await import(UI_BUNDLE)) as typeof import('../../runtime/ui-bundle.mjs');
    assets = await uiAssets(fileURLToPath(new URL('../../..', import.meta.url)));
  } catch (err) {
    throw new CliError(`cannot build the dashboard's assets (${(err as Error).message}); run scripts/build`);
  }
  const server = await startUiServer({ listen: o.listen, assets, clientFor, fleet }).catch((err) => {
    throw new CliError(`cannot serve the dashboard on ${o.listen}: ${(err as Error).message}`);
  });
  fleet.start();
  process.stdout.write(`plexus ui: ${server.url}\n`);
  process.stdout.write('(the link carries this launch’s secret: keep it to yourself; Ctrl-C stops)\n');
  if (o.open) openBrowser(server.url);
  await fleet.ready(FIRST_SNAPSHOT_MS);
  const problem = fleet.snapshot.problem;
  if (problem) process.stderr.write(`plexus ui: cannot reach the fleet yet: ${problem}\n`);
  else process.stdout.write(`fleet of ${fleet.snapshot.nodes.length} nodes in ${Date.now() - started} ms\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  fleet.stop();
  await server.close();
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
