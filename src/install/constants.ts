/** Where a release install lives and the limits of upgrades, each with why. */

/** Releases, one folder each, and the `current` symlink (docs/install.md). */
export const DEFAULT_PREFIX = '/opt/plexus';
/** config.yaml and the trusted release key: configuration, so under /etc. */
export const DEFAULT_ETC = '/etc/plexus';
/** DATA, as the unit's StateDirectory= makes it. */
export const DEFAULT_DATA = '/var/lib/plexus';
/** The unit the agent runs as. */
export const UNIT_NAME = 'plexus.service';
/** The largest release accepted: today's is ~45 MB; room for growth, not for a disk-filling download. */
export const MAX_RELEASE_BYTES = 512 * 1024 * 1024;
/** SHA256SUMS lists a few files; anything larger is not one. */
export const MAX_SUMS_BYTES = 64 * 1024;
/** Unpacked, a release is ~4x its tarball; the check before unpacking asks for this factor. */
export const UNPACKED_FACTOR = 4;
/** The budget: a new version that is not healthy and back in the mesh by then is rolled back. */
export const HEALTH_TIMEOUT_MS = 60_000;
/** Releases kept under releases/: the current one, the previous one (for --rollback), one more. */
export const KEEP_RELEASES = 3;
/** The domain string of a release signature (src/crypto/signed.ts says why domains). */
export const RELEASE_SIG_DOMAIN = 'plexus-release-sums/1';
