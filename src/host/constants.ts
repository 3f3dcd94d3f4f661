/** Defaults of the host subsystem, each with why it has that value. */

/** apt waits this long for another apt or dpkg (unattended-upgrades, a second helper) to finish. */
export const APT_LOCK_TIMEOUT_S = 120;
/** A whole install (download included) that takes longer than this is stuck. */
export const APT_TIMEOUT_MS = 15 * 60_000;
/** A daemon that is not ready this long after it started is taken as failed (PostgreSQL's recovery may take seconds). */
export const DAEMON_READY_TIMEOUT_MS = 30_000;
/** How often readiness is probed while a daemon starts. */
export const DAEMON_READY_POLL_MS = 100;

/** The edge's ports when none are given: the standard ones. */
export const DEFAULT_HTTPS_PORT = 443;
/** Plain HTTP: Caddy answers ACME HTTP-01 challenges and redirects to https here. */
export const DEFAULT_HTTP_PORT = 80;
/**
 * How often the agent checks that Caddy still runs the config it loaded (a restarted Caddy comes
 * back with only its admin endpoint). Short, since routes are down until it is re-applied; one
 * GET on a unix socket costs nothing.
 */
export const EDGE_CHECK_MS = 2_000;
/** How often each domain's certificate is checked (a TLS handshake to the local edge per domain). */
export const CERT_CHECK_MS = 60_000;
/** `domain ls` checks a domain without a valid certificate again when its last check is older. */
export const CERT_RECHECK_MS = 3_000;
/** A certificate expiring sooner than this is reported (Caddy renews at a third of its lifetime left). */
export const CERT_WARN_DAYS = 7;
/** A new domain without a certificate is `pending` this long before it is reported as an error. */
export const CERT_PENDING_MS = 5 * 60_000;
/** A certificate error text kept in the database and in telemetry is cut to this. */
export const CERT_ERROR_MAX_CHARS = 200;
/** Certificate problems named in one telemetry record (mesh's MAX_RECORD_CERT_PROBLEMS; 16 KiB cap). */
export const TELEMETRY_MAX_CERT_PROBLEMS = 4;
/** A certificate problem's text in telemetry (mesh's MAX_RECORD_CERT_ERROR). */
export const TELEMETRY_CERT_ERROR_CHARS = 100;
/** Domains per node: each is a route and a certificate; beyond this, use a wildcard elsewhere. */
export const MAX_DOMAINS = 500;
/** Answer size read from Caddy's admin API (its config for 500 domains is far smaller). */
export const ADMIN_MAX_BYTES = 4 * 1024 * 1024;
/** A call to Caddy's admin API that takes longer than this has failed. */
export const ADMIN_TIMEOUT_MS = 10_000;
/** Tries of an admin call whose connection is refused (Caddy re-opens its socket after a /load). */
export const ADMIN_RETRIES = 10;
/** Pause between those tries. */
export const ADMIN_RETRY_MS = 50;
/** Lines of Caddy's log read for the reasons of failed issuances (a few per failing domain a minute). */
export const CADDY_LOG_LINES = 400;
/** The PEM roots `edge install --acme-ca-root` may give (a few certificates). */
export const ACME_CA_ROOT_MAX_BYTES = 16 * 1024;
