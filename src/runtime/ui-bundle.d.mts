/** Types of ui-bundle.mjs (plain JavaScript, like bundle.mjs). */

/** Where a release keeps the dashboard's assets, relative to the installation. */
export const RELEASE_UI_DIR: string;
/** The files a complete build holds. */
export const UI_FILES: string[];
/** Bundles `root`'s browser sources into `dir`. */
export function buildUi(root: string, dir: string, modules?: string): Promise<void>;
/** The folder with the dashboard's assets for `root` (built into the compile cache when missing). */
export function uiAssets(root: string, cacheDir?: string): Promise<string>;
