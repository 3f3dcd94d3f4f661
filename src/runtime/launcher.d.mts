/** Types of launcher.mjs (plain JavaScript, loaded before any TypeScript). */

/** Where a release install keeps its prebuilt bundle, relative to the installation. */
export const RELEASE_DIR: string;
/** The release bundle's file name. */
export const RELEASE_BUNDLE: string;
/** The stamp beside it; its presence marks the bundle as a release build. */
export const RELEASE_STAMP: string;

/** Where the development bundle of `root`'s sources lives in `cacheDir`, or undefined. */
export function devBundlePath(root: string, cacheDir: string | undefined): string | undefined;

/** Runs the CLI from the agent bundle; false, having run nothing, when there is none. */
export function runBundledAgent(root: string, cacheDir: string | undefined): Promise<boolean>;
