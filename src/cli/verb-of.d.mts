/** Types of verb-of.mjs (plain JavaScript, loaded before any TypeScript). */

/** The verb of a `plexus` command line (`process.argv.slice(2)`), or undefined. */
export function verbOf(args: string[]): string | undefined;
