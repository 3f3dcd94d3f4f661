/** Named errors of the workload manager. Tests assert on `name` or `code`, never on messages. */
import { PlexusError } from '../core/errors.ts';

/** No app with that name on this node. */
export class UnknownAppError extends PlexusError {
  override name = 'UnknownAppError';
  constructor(app: string) {
    super('UNKNOWN_APP', `no app '${app}' on this node; see 'plexus apps'`, 'not_found');
  }
}

/** An app name, env name, command or other argument is not acceptable. */
export class InvalidSpecError extends PlexusError {
  override name = 'InvalidSpecError';
  constructor(code: string, message: string) {
    super(code, message, 'invalid');
  }
}

/** The bundle could not be fetched (404, timeout, refused connection). */
export class DownloadError extends PlexusError {
  override name = 'DownloadError';
  constructor(code: string, message: string, kind: 'invalid' | 'unavailable' | 'too_large' = 'unavailable') {
    super(code, message, kind);
  }
}

/** The bundle's sha256 is not the one given. */
export class ChecksumMismatchError extends PlexusError {
  override name = 'ChecksumMismatchError';
  constructor(expected: string, actual: string) {
    super(
      'CHECKSUM_MISMATCH',
      `bundle sha256 is ${actual}, expected ${expected}; check the URL and the checksum`,
      'invalid',
    );
  }
}

/** The archive is corrupt, hostile or over a limit. */
export class UnsafeArchiveError extends PlexusError {
  override name = 'UnsafeArchiveError';
  constructor(code: string, message: string, kind: 'invalid' | 'too_large' = 'invalid') {
    super(code, message, kind);
  }
}

/** The app's port is held by another process. */
export class PortInUseError extends PlexusError {
  override name = 'PortInUseError';
  constructor(port: number, holder?: string) {
    super(
      'PORT_IN_USE',
      `port ${port} is already in use${holder ? ` by app '${holder}'` : ''}; stop what holds it or choose another --port`,
      'conflict',
    );
  }
}

/**
 * A declared port no app may take: one of the agent's own (API, mesh…), or below 1024 without
 * `workloads.lowPorts` (its kernel redirect would take a system service's traffic).
 */
export class PortReservedError extends PlexusError {
  override name = 'PortReservedError';
  constructor(port: number, why: 'agent' | 'low') {
    super(
      'PORT_RESERVED',
      why === 'agent'
        ? `port ${port} is one of the agent's own ports; choose another --port`
        : `port ${port} is below 1024, where system services listen; choose another --port, or set workloads.lowPorts: true in the agent's config`,
      'invalid',
    );
  }
}

/** The new release did not become healthy; the previous one was put back. */
export class DeployFailedError extends PlexusError {
  override name = 'DeployFailedError';
  constructor(code: string, message: string) {
    super(code, message, 'invalid');
  }
}

/** A traffic switch (the kernel redirect, the edge) could not send an app's traffic to a release. */
export class TrafficSwitchError extends PlexusError {
  override name = 'TrafficSwitchError';
  constructor(switchName: string, app: string, why: string) {
    super(
      'TRAFFIC_SWITCH_FAILED',
      `the ${switchName} switch could not route '${app}': ${why}`,
      'unavailable',
    );
  }
}

/** Another operation on the same app is in progress. */
export class AppBusyError extends PlexusError {
  override name = 'AppBusyError';
  constructor(app: string, what: string) {
    super('APP_BUSY', `app '${app}' is busy (${what}); try again when it finishes`, 'conflict');
  }
}

/** The release asked for does not exist. */
export class UnknownReleaseError extends PlexusError {
  override name = 'UnknownReleaseError';
  constructor(app: string, release: string) {
    super(
      'UNKNOWN_RELEASE',
      `app '${app}' has no release '${release}'; see 'plexus releases ${app}'`,
      'not_found',
    );
  }
}

/** Secrets cannot be read or written (missing or corrupt master.key, tampered value). */
export class SecretError extends PlexusError {
  override name = 'SecretError';
  constructor(code: string, message: string) {
    super(code, message, 'internal');
  }
}

/** A webhook request failed authentication; the message never says which part was wrong. */
export class WebhookAuthError extends PlexusError {
  override name = 'WebhookAuthError';
  constructor() {
    super('WEBHOOK_UNAUTHORIZED', 'webhook signature or timestamp rejected', 'unauthenticated');
  }
}

/** The configured backend cannot run here (no systemd). */
export class BackendUnavailableError extends PlexusError {
  override name = 'BackendUnavailableError';
  constructor(message: string) {
    super('BACKEND_UNAVAILABLE', message, 'unavailable');
  }
}

/** A webhook call whose signature was already used. */
export class WebhookReplayError extends PlexusError {
  override name = 'WebhookReplayError';
  constructor() {
    super(
      'WEBHOOK_REPLAYED',
      'webhook call already received (replay); sign each call with a fresh timestamp',
      'unauthenticated',
    );
  }
}

/** The caller's key is valid but not an admin's, and the action (or this part of it) is admin-only. */
export class AdminOnlyError extends PlexusError {
  override name = 'AdminOnlyError';
  constructor(message: string) {
    super('DENIED', message, 'denied');
  }
}

/** The app's Unix user cannot be found, created or used. */
export class AppUserError extends PlexusError {
  override name = 'AppUserError';
  constructor(code: string, message: string) {
    super(
      code,
      message,
      code === 'APP_USER_FAILED' || code === 'APP_USER_UNRESOLVED' ? 'internal' : 'invalid',
    );
  }
}

/** An app may run as root only when an admin asked for it with `--allow-root`. */
export class RootNotAllowedError extends PlexusError {
  override name = 'RootNotAllowedError';
  constructor(app: string) {
    super(
      'ROOT_NOT_ALLOWED',
      `app '${app}' would run as root; an admin must deploy it with --allow-root, or leave out --user`,
      'denied',
    );
  }
}

/** A deploy to a name that an app this key may not see already has. */
export class AppNameTakenError extends PlexusError {
  override name = 'AppNameTakenError';
  constructor(app: string) {
    super('APP_NAME_TAKEN', `app name '${app}' is taken on this node; choose another name`, 'conflict');
  }
}

/** A tenant-limited key named another tenant for a new app. */
export class TenantMismatchError extends PlexusError {
  override name = 'TenantMismatchError';
  constructor(keyTenant: string, asked: string) {
    super(
      'TENANT_MISMATCH',
      `this key is limited to tenant '${keyTenant}', not '${asked}'; leave out --tenant`,
      'denied',
    );
  }
}
