/** Types of type-strip-cache.mjs (plain JavaScript, loaded before any TypeScript). */

/** The verb of a `plexus` command line (`process.argv.slice(2)`), or undefined. */
export function verbOf(args: string[]): string | undefined;

/**
 * Serves `.ts` modules type-stripped from a cache under `dir`. Returns false (and changes
 * nothing) where the Node in use cannot: then Node strips them itself.
 */
export function cacheTypeStripping(dir: string): boolean;
