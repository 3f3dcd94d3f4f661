/** Errors of the telemetry subsystem. */
import { PlexusError } from '../core/errors.ts';

/** No history is kept for that node (unknown name, or it never published). */
export class NoHistoryError extends PlexusError {
  override name = 'NoHistoryError';
  constructor(node: string) {
    super(
      'NO_HISTORY',
      `no telemetry history for '${node}'; check the name with 'plexus peers'`,
      'not_found',
    );
  }
}

/** The container engine (Docker, Podman) did not answer as its API says: refused, slow, oversized, malformed. */
export class ContainerEngineError extends PlexusError {
  override name = 'ContainerEngineError';
  constructor(why: string) {
    super('CONTAINER_ENGINE_FAILED', `container engine: ${why}`, 'unavailable');
  }
}
