/**
 * The entry of the agent's bundle (src/runtime/bundle.mjs): `plexus agent` alone. boot.mjs runs
 * the bundle for that verb only, so the other verbs stay out of the agent process: their code
 * (~160 KB of the bundle, which V8 keeps as one string) and the commander objects of ~75 verbs
 * were part of every idle agent's heap. Without a bundle (PLEXUS_NO_BUNDLE=1) the agent runs
 * from main.ts like every other verb, with the same options.
 */
import { Command } from 'commander';
import { VERSION } from '../core/version.ts';
import { registerAgent } from './agent.ts';
import { runCli } from './run.ts';

// Everything the agent writes (database, logs, releases) is private to its user, as in main.ts.
process.umask(0o077);

const program = new Command('plexus')
  .option('--data-dir <dir>', 'agent data directory (default: $PLEXUS_DATA_DIR, /var/lib/plexus as root)')
  .version(`plexus ${VERSION} (node ${process.version}, ${process.execPath})`, '-V, --version')
  .exitOverride();
registerAgent(program);

await runCli(program);
