/** The plexus version, from package.json, without reading files at run time. */
export const VERSION = '0.1.0';
