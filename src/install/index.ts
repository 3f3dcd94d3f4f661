/**
 * Installing, upgrading and removing a release of plexus on a host (issue 15, docs/install.md):
 * release signatures, the tarball's checks and unpacking, the `current` switch with its health
 * gate and rollback, and the install and uninstall steps. Used by the CLI; the agent uses it only
 * to receive a release over the mesh.
 */
export {
  DEFAULT_DATA,
  DEFAULT_ETC,
  DEFAULT_PREFIX,
  HEALTH_TIMEOUT_MS,
  MAX_RELEASE_BYTES,
  UNIT_NAME,
} from './constants.ts';
export { downloadRelease } from './download.ts';
export * from './errors.ts';
export {
  type FleetUpgradeInit,
  fleetUpgradeActions,
  fleetUpgradeInit,
  launchUpgrader,
  readStatus,
  type UpgradeStatus,
  writeStatus,
} from './fleet-actions.ts';
export { type InstallOptions, installSteps, unitFor } from './install.ts';
export {
  checkPlatform,
  type InstallLayout,
  installLayout,
  parseManifest,
  type ReleaseManifest,
  readManifest,
} from './layout.ts';
export {
  inspectArchive,
  proofBeside,
  type ReleaseProof,
  sha256File,
  unpackRelease,
  verifyRelease,
} from './release-archive.ts';
export { readTrustedKey, releasePublicKey, signSums, sumFor, verifySums } from './release-signature.ts';
export { type AgentView, type CheckResult, repair } from './repair.ts';
export { runSteps, type Step } from './steps.ts';
export { SUPERVISOR_SCRIPT, serviceKind, supervisorControl, supervisorPid } from './supervisor.ts';
export { pointAt, pruneReleases, switchTo, versionAt } from './switch.ts';
export { type UninstallOptions, uninstallSteps } from './uninstall.ts';
export {
  type AgentHealth,
  rollback,
  type UpgradeComponents,
  type UpgradeResult,
  upgradeFromFile,
} from './upgrade.ts';
