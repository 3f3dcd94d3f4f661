/**
 * The `plexus` command. Each verb group lives in its own file and registers itself here.
 * Verb files import only light modules at the top and load heavy ones (libp2p, SQLite) inside
 * their handlers, so that verbs which only talk to the agent start fast.
 */
import { Command } from 'commander';
import { VERSION } from '../core/version.ts';
import { registerAgent } from './agent.ts';
import { takeApiFlag } from './api-flag.ts';
import { registerAppEnv } from './app-env.ts';
import { registerApps } from './apps.ts';
import { registerCompletion } from './completion.ts';
import { registerCp } from './cp.ts';
import { registerEdge } from './edge.ts';
import { registerExec } from './exec.ts';
import { registerInit } from './init.ts';
import { registerInstall } from './install.ts';
import { registerJoin } from './join.ts';
import { registerMesh } from './mesh.ts';
import { registerOperator } from './operator.ts';
import { registerRelease } from './release.ts';
import { registerRepair } from './repair.ts';
import { runCli } from './run.ts';
import { registerServices, takeServiceVersionFlag } from './services.ts';
import { registerShell } from './shell.ts';
import { registerSshProxy } from './ssh-proxy.ts';
import { registerSwarmKey } from './swarm-key.ts';
import { registerToken } from './token.ts';
import { registerTop } from './top.ts';
import { registerTunnels } from './tunnels.ts';
import { registerUi } from './ui.ts';
import { registerUpgrade } from './upgrade.ts';
import { addVerbExamples } from './verb-examples.ts';

// `plexus [--api URL] VERB …`: a remote agent for any verb but init/join (see api-flag.ts).
takeApiFlag(process.argv, process.env);
takeServiceVersionFlag(process.argv);

// Everything the agent writes (database, logs, releases) is private to its user by default.
process.umask(0o077);

const program = new Command('plexus')
  .description('one agent per server: a private mesh that runs apps, tunnels traffic and gossips telemetry')
  .option('--data-dir <dir>', 'agent data directory (default: $PLEXUS_DATA_DIR, /var/lib/plexus as root)')
  .option('--key <file>', 'operator key that signs commands (default: $PLEXUS_KEY, else DATA/keys/admin.key)')
  .option('--node <name>', 'run the verb on that node as a signed command, relayed over the mesh')
  .addHelpText(
    'after',
    '\nRemote operation: plexus --api http://HOST:7071 --key op.key VERB … (or PLEXUS_API, PLEXUS_KEY)\n' +
      'sends every verb as a signed command through that agent; --node NAME on a verb relays it there.',
  )
  // The runtime named: a release runs its own Node, not the system's (docs/install.md).
  .version(`plexus ${VERSION} (node ${process.version}, ${process.execPath})`, '-V, --version')
  .showHelpAfterError('(run plexus --help for usage)')
  .exitOverride();

program
  .command('version')
  .description('print the plexus version')
  .option('--json', 'print JSON')
  .action((opts) => {
    if (opts.json) process.stdout.write(`${JSON.stringify({ version: VERSION, node: process.version })}\n`);
    else process.stdout.write(`plexus ${VERSION} (node ${process.version})\n`);
  });

registerInit(program);
registerJoin(program);
registerAgent(program);
registerMesh(program);
registerApps(program);
registerAppEnv(program);
registerOperator(program);
registerSwarmKey(program);
registerExec(program);
registerToken(program);
registerTop(program);
registerTunnels(program);
registerShell(program);
registerCp(program);
registerSshProxy(program);
registerRelease(program);
registerCompletion(program);
registerInstall(program);
registerUpgrade(program);
registerEdge(program);
registerServices(program);
registerRepair(program);
registerUi(program);
addVerbExamples(program);

await runCli(program);
