/**
 * `domain add|rm|ls` (issue 18): which host names the edge serves for which app. A domain is
 * added only when the host name is valid, free, for an app that exists and listens on a port,
 * and (unless told not to) resolves to this node; if Caddy refuses the new config, the domain is
 * not kept. Certificates are Caddy's business; their state comes from `Edge.checkCertificates`.
 */
import {
  CERT_CHECK_MS,
  CERT_RECHECK_MS,
  MAX_DOMAINS,
  TELEMETRY_CERT_ERROR_CHARS,
  TELEMETRY_MAX_CERT_PROBLEMS,
} from './constants.ts';
import { checkResolvesHere, type Resolver } from './dns-check.ts';
import type { Edge } from './edge.ts';
import type { DomainRow } from './edge-repo.ts';
import { AppNotRoutableError, DomainTakenError, EdgeUnavailableError, UnknownDomainError } from './errors.ts';
import { normalizeHost } from './host-name.ts';

/** What the domain verbs need besides the edge. */
export interface DomainDeps {
  edge: Edge;
  /** True when the app exists on this node. */
  appExists(app: string): boolean;
  /** Where its live release listens (undefined: no port). */
  upstreamOf(app: string): number | undefined;
  resolve: Resolver;
  /** This node's addresses, those peers see included. */
  localAddresses(): string[];
}

/** One domain as `domain ls` shows it. */
export type DomainView = DomainRow;

/** Adds `host` for `app` and loads the new config into Caddy. */
export async function addDomain(
  d: DomainDeps,
  app: string,
  rawHost: string,
  dnsCheck: boolean,
): Promise<DomainView> {
  const host = normalizeHost(rawHost);
  d.edge.requireSettings();
  if (!d.appExists(app))
    throw new AppNotRoutableError('UNKNOWN_APP', `no app '${app}' on this node; see 'plexus apps'`);
  const existing = d.edge.repo.domain(host);
  if (existing && existing.app !== app) throw new DomainTakenError(host, existing.app);
  if (existing) return existing;
  if (d.upstreamOf(app) === undefined)
    throw new AppNotRoutableError(
      'APP_HAS_NO_PORT',
      `app '${app}' has no port; deploy it with --port so the edge can reach it`,
    );
  if (d.edge.repo.count() >= MAX_DOMAINS)
    throw new EdgeUnavailableError('EDGE_ADMIN_FAILED', `this node serves ${MAX_DOMAINS} domains already`);
  if (dnsCheck) await checkResolvesHere(host, d.resolve, d.localAddresses());
  d.edge.repo.addDomain(host, app);
  try {
    await d.edge.apply();
  } catch (err) {
    // Caddy refused (or is down): the domain is not kept, so the table says what Caddy serves.
    d.edge.repo.deleteDomain(host);
    await d.edge.apply().catch(() => {});
    throw err;
  }
  return d.edge.repo.domain(host)!;
}

/** Removes `host`; Caddy stops serving it at once. */
export async function removeDomain(
  d: DomainDeps,
  rawHost: string,
): Promise<{ host: string; app: string; removed: true }> {
  const host = normalizeHost(rawHost);
  const row = d.edge.repo.domain(host);
  if (!row) throw new UnknownDomainError(host);
  d.edge.repo.deleteDomain(host);
  if (d.edge.repo.settings()) await d.edge.apply();
  return { host, app: row.app, removed: true };
}

/**
 * Every domain with its certificate state, checked again when the last check is old, or a few
 * seconds old for one without a valid certificate (an operator waiting on it sees it change).
 */
export async function listDomains(d: DomainDeps): Promise<DomainView[]> {
  const age = (r: DomainView) => (r.checkedAt ? Date.now() - r.checkedAt : Number.POSITIVE_INFINITY);
  const stale = d.edge.repo
    .domains()
    .some((r) => age(r) > CERT_CHECK_MS || (r.cert !== 'ok' && age(r) > CERT_RECHECK_MS));
  if (stale && d.edge.repo.settings()) await d.edge.checkCertificates().catch(() => {});
  return d.edge.repo.domains();
}

/**
 * The edge in this node's telemetry record: the number of domains and the first few with a
 * certificate problem, texts cut short (the record has a 16 KiB cap); undefined without an edge.
 */
export function edgeForTelemetry(edge: Edge):
  | {
      domains: number;
      certProblems: { host: string; app: string; cert: 'error' | 'expiring'; error: string }[];
    }
  | undefined {
  if (!edge.repo.settings()) return undefined;
  const rows = edge.repo.domains();
  const certProblems = rows
    .filter((r) => r.cert === 'error' || r.cert === 'expiring')
    .slice(0, TELEMETRY_MAX_CERT_PROBLEMS)
    .map((r) => ({
      host: r.host,
      app: r.app,
      cert: r.cert as 'error' | 'expiring',
      // One line of printable text (the record schema refuses control characters).
      error: (r.certError ?? '').replace(/[\x00-\x1f\x7f-\x9f]/g, ' ').slice(0, TELEMETRY_CERT_ERROR_CHARS),
    }));
  return { domains: rows.length, certProblems };
}
