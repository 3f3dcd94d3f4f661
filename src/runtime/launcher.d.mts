/** Types of agent-bundle.mjs (plain JavaScript, loaded before any TypeScript). */

/**
 * The bundle's text of the dependency file at `path`: `src` with the bundle's changes to it
 * (REWRITES in agent-bundle.mjs). Throws when a change no longer applies.
 */
export function rewriteDependency(path: string, src: string): string;

/** Runs the CLI from the agent bundle; false, having run nothing, when there is none. */
export function runBundledAgent(root: string, cacheDir: string | undefined): Promise<boolean>;
