/**
 * `--api URL` selects a remote agent for any verb (`plexus --api http://host:7071 apps`). It is
 * taken out of argv before commander parses it, because `init`, `join` and `install` have an
 * `--api` of their own (their HTTP listen address); for those verbs nothing is touched.
 */

const OWN_API_VERBS = new Set(['init', 'join', 'install']);
const GLOBAL_VALUE_FLAGS = new Set(['--data-dir', '--key', '--node']);

/** Moves `--api URL` / `--api=URL` from `argv` (process.argv shape) into `env.PLEXUS_API`. */
export function takeApiFlag(argv: string[], env: NodeJS.ProcessEnv): void {
  let verb: string | undefined;
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return;
    if (verb === undefined && !arg.startsWith('-')) {
      verb = arg;
      if (OWN_API_VERBS.has(verb)) return;
      continue;
    }
    if (arg === '--api' && i + 1 < argv.length) {
      env.PLEXUS_API = argv[i + 1];
      argv.splice(i--, 2);
    } else if (arg.startsWith('--api=')) {
      env.PLEXUS_API = arg.slice('--api='.length);
      argv.splice(i--, 1);
    } else if (verb === undefined && GLOBAL_VALUE_FLAGS.has(arg)) i++;
  }
}
