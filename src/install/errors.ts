/** Errors of install, upgrade and uninstall. Tests assert on `code`, never on the message. */
import { PlexusError } from '../core/errors.ts';

/** A release was refused before anything was switched: checksum, signature, archive, architecture. */
export class ReleaseRefusedError extends PlexusError {
  override name = 'ReleaseRefusedError';
  constructor(code: ReleaseRefusal, message: string) {
    super(code, message, 'invalid');
  }
}

/** Why a release was refused (the `code` of a ReleaseRefusedError). */
export type ReleaseRefusal =
  | 'CHECKSUM_MISMATCH'
  | 'BAD_SIGNATURE'
  | 'UNTRUSTED_RELEASE_KEY'
  | 'WRONG_ARCH'
  | 'ARCHIVE_INVALID'
  | 'RELEASE_TOO_LARGE'
  | 'DOWNLOAD_FAILED';

/** The disk filled up while a release was unpacked; nothing was switched. */
export class NoSpaceError extends PlexusError {
  override name = 'NoSpaceError';
  constructor(where: string, neededMb: number) {
    super(
      'NO_SPACE',
      `no space left in ${where} while unpacking the release (about ${neededMb} MB needed); free some space or remove old releases, the running version is untouched`,
      'unavailable',
    );
  }
}

/** plexus is not installed here (no `current` release), so there is nothing to upgrade or roll back. */
export class NotInstalledError extends PlexusError {
  override name = 'NotInstalledError';
  constructor(prefix: string) {
    super(
      'NOT_INSTALLED',
      `plexus is not installed under ${prefix}; run install.sh from a release first`,
      'not_found',
    );
  }
}

/** No earlier release to go back to. */
export class NoPreviousReleaseError extends PlexusError {
  override name = 'NoPreviousReleaseError';
  constructor() {
    super('NO_PREVIOUS_RELEASE', 'there is no earlier release to roll back to', 'not_found');
  }
}

/** The new version did not become healthy and was rolled back (the message says why). */
export class UpgradeRolledBackError extends PlexusError {
  override name = 'UpgradeRolledBackError';
  constructor(message: string) {
    super('ROLLED_BACK', message, 'unavailable');
  }
}

/** A step of an install or uninstall failed; the message names the step. */
export class InstallStepError extends PlexusError {
  override name = 'InstallStepError';
  constructor(message: string) {
    super('INSTALL_STEP_FAILED', message, 'internal');
  }
}

/** Install, upgrade and uninstall change the system: they need root. */
export class NeedsRootError extends PlexusError {
  override name = 'NeedsRootError';
  constructor(verb: string) {
    super(
      'NEEDS_ROOT',
      `plexus ${verb} changes the system: run it as root (or with --dry-run to see what it would do)`,
      'denied',
    );
  }
}

/** The agent's supervisor (packaging/supervisor/plexus-supervise) is not running or did not act. */
export class SupervisorError extends PlexusError {
  override name = 'SupervisorError';
  constructor(message: string) {
    super('SUPERVISOR_UNAVAILABLE', message, 'unavailable');
  }
}
