/** The mesh subsystem: libp2p node, join/admission, membership, naming, telemetry gossip. */
export { meshActions } from './actions.ts';
export * from './constants.ts';
export * from './errors.ts';
export { loadNodeKeys, type NodeKeys } from './keys.ts';
export { type Member, Membership } from './membership.ts';
export { Mesh, type MeshComponents, type MeshInit, type PeerView } from './mesh.ts';
export { meshMigrations } from './migrations.ts';
export {
  type GrantPayload,
  OPERATOR_ROLES,
  OperatorGrants,
  type OperatorKey,
  type OperatorRole,
  signGrant,
} from './operators.ts';
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
  MAX_RECORD_SERVICES,
  type TelemetryApp,
  telemetryRecordSchema,
} from './telemetry-schema.ts';
export { decodeToken, parseTtl } from './token.ts';
