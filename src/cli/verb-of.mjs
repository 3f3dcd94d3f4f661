/**
 * Finds the verb of a `plexus` command line before commander parses it: src/cli/boot.mjs runs
 * `agent` from its bundle and everything else from the sources. Plain JavaScript, loaded before
 * any TypeScript.
 */

/** Global options of `plexus` that take a value (see main.ts and api-flag.ts). */
const VALUE_OPTIONS = new Set(['--data-dir', '--key', '--node', '--api']);

/** The verb of a `plexus` command line (`process.argv.slice(2)`), or undefined. */
export function verbOf(args) {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}
