/** Named errors of the host subsystem (host daemons, the Caddy edge, domains, services). */
import { PlexusError } from '../core/errors.ts';

/** apt-get could not install or remove a package; what it added has been removed again. */
export class PackageError extends PlexusError {
  override name = 'PackageError';
  constructor(code: 'APT_FAILED' | 'APT_MISSING' | 'APT_VERSION', message: string) {
    super(code, message, code === 'APT_VERSION' ? 'invalid' : 'unavailable');
  }
}

/** A host daemon (Caddy, Redis, PostgreSQL) could not be started or stopped. */
export class HostDaemonError extends PlexusError {
  override name = 'HostDaemonError';
  constructor(code: 'DAEMON_START_FAILED' | 'DAEMON_USER_MISSING' | 'SYSTEMCTL_FAILED', message: string) {
    super(code, message, 'unavailable');
  }
}

/** The edge is not installed on this node, or Caddy does not answer on its admin socket. */
export class EdgeUnavailableError extends PlexusError {
  override name = 'EdgeUnavailableError';
  constructor(code: 'EDGE_NOT_INSTALLED' | 'EDGE_ADMIN_FAILED', message: string, cause?: unknown) {
    super(code, message, code === 'EDGE_NOT_INSTALLED' ? 'conflict' : 'unavailable', { cause });
  }
}

/** A host name that is not a valid DNS name for a certificate. */
export class InvalidHostError extends PlexusError {
  override name = 'InvalidHostError';
  constructor(host: string, why: string) {
    super('INVALID_HOST', `'${host.slice(0, 80)}' is not a valid host name: ${why}`, 'invalid');
  }
}

/** The domain is already served for another app. */
export class DomainTakenError extends PlexusError {
  override name = 'DomainTakenError';
  constructor(host: string, app: string) {
    super('DOMAIN_TAKEN', `${host} is already bound to app '${app}'; remove it there first`, 'conflict');
  }
}

/** No such domain on this node. */
export class UnknownDomainError extends PlexusError {
  override name = 'UnknownDomainError';
  constructor(host: string) {
    super(
      'UNKNOWN_DOMAIN',
      `no domain ${host.slice(0, 253)} on this node; see 'plexus domain ls'`,
      'not_found',
    );
  }
}

/** HOST does not resolve to this node (the certificate could not be issued). */
export class DnsCheckError extends PlexusError {
  override name = 'DnsCheckError';
  constructor(host: string, detail: string) {
    super(
      'DNS_MISMATCH',
      `${host} ${detail}; point its A/AAAA record here, or pass --no-dns-check`,
      'conflict',
    );
  }
}

/** An app that cannot be routed: unknown, or without a port. */
export class AppNotRoutableError extends PlexusError {
  override name = 'AppNotRoutableError';
  constructor(code: 'UNKNOWN_APP' | 'APP_HAS_NO_PORT', message: string) {
    super(code, message, code === 'UNKNOWN_APP' ? 'not_found' : 'conflict');
  }
}

/** `service install` named a service plexus does not know. */
export class UnknownServiceError extends PlexusError {
  override name = 'UnknownServiceError';
  constructor(service: string, known: string[]) {
    super(
      'UNKNOWN_SERVICE',
      `unknown service '${service.slice(0, 64)}'; plexus installs ${known.join(', ')}`,
      'invalid',
    );
  }
}

/** The service is not installed by plexus on this node, or it cannot do what was asked. */
export class ServiceStateError extends PlexusError {
  override name = 'ServiceStateError';
  constructor(
    code: 'SERVICE_NOT_INSTALLED' | 'SERVICE_NO_DATABASES' | 'SERVICE_SQL_FAILED',
    message: string,
  ) {
    super(code, message, code === 'SERVICE_NOT_INSTALLED' ? 'not_found' : 'conflict');
  }
}
