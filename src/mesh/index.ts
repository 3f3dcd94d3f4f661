/**
 * The mesh subsystem: the libp2p node, admission, membership (with the operator grants it
 * replicates), the connection gater, connections to every member, and the telemetry bus.
 */
import { Mesh, type MeshComponents, type MeshInit } from './mesh.ts';

export * from './constants.ts';
export * from './errors.ts';
export { loadNodeKeys, type NodeKeys } from './keys.ts';
export { type Member, Membership } from './membership.ts';
export { Mesh, type MeshComponents, type MeshInit } from './mesh.ts';
export { meshMigrations } from './migrations.ts';
export type { NodeStatus } from './node-status.ts';
export {
  type GrantPayload,
  OPERATOR_ROLES,
  OperatorGrants,
  type OperatorKey,
  type OperatorRole,
  signGrant,
} from './operators.ts';
export type { ConnectionPath, PeerView, PingResult } from './peer-directory.ts';
export { signRevocation } from './records.ts';
export { initNetwork, joinNetwork, type SetupResult } from './setup.ts';
export {
  type PeerState,
  stateOf,
  type TelemetryBase,
  TelemetryBus,
  type TelemetryCounts,
  type TelemetryProvider,
  type TelemetryRecord,
} from './telemetry.ts';
export {
  MAX_RECORD_APPS,
  MAX_RECORD_CONTAINERS,
  MAX_RECORD_SERVICES,
  type TelemetryApp,
  type TelemetryContainer,
  telemetryRecordSchema,
} from './telemetry-schema.ts';
export { decodeToken, parseTtl } from './token.ts';
export { type TokenEntry, TokenLedger } from './token-ledger.ts';

/**
 * Creates the mesh without network I/O (it only reads the already-open store into the
 * membership's caches); `start()` creates and starts the libp2p node, `stop()` stops it.
 * The composition root registers `mesh.actions`.
 */
export function createMesh(init: MeshInit, components: MeshComponents): Mesh {
  return new Mesh(init, components);
}
