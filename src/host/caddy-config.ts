/**
 * The JSON config the agent loads into Caddy (never a Caddyfile): the admin endpoint on a unix
 * socket, certificates kept in the edge's own storage folder, and one route per app matching the
 * app's domains and proxying to the port its live release listens on. Caddy's automatic HTTPS
 * obtains and renews a certificate for every host in a route, redirects http to https, and with
 * the `internal` issuer signs them with its own local CA (tests, private networks).
 */
import { createHash } from 'node:crypto';

/** The edge's settings, from `plexus edge install`. */
export interface EdgeSettings {
  httpPort: number;
  httpsPort: number;
  issuer: 'acme' | 'internal';
  /** ACME account email (expiry notices from the CA). */
  email: string | null;
  /** The ACME directory URL of another CA than Let's Encrypt and ZeroSSL (a staging or private one). */
  acmeCa?: string | null;
  /** The PEM root that CA's own HTTPS endpoint is trusted by (a private CA's). */
  acmeCaRoot?: string | null;
}

/** Where Caddy's files are. */
export interface EdgePaths {
  /** The admin API's unix socket. */
  adminSocket: string;
  /** Caddy's storage (certificates, the internal CA's keys). */
  storage: string;
  /** Where the agent writes `acmeCaRoot` for Caddy to read. */
  acmeCaRoot?: string;
}

/** One app's route: its hosts and its upstream port. */
export interface AppRoute {
  app: string;
  hosts: string[];
  port: number;
}

/** The config Caddy starts with: the admin socket only, so nothing is served until the agent loads its own. */
export function bootstrapConfig(paths: EdgePaths): Record<string, unknown> {
  return { admin: adminBlock(paths), storage: { module: 'file_system', root: paths.storage } };
}

function adminBlock(paths: EdgePaths) {
  // persist: false: Caddy must not write autosave.json; the agent is the one source of the config.
  return { listen: `unix/${paths.adminSocket}`, config: { persist: false } };
}

/**
 * The full config. Its storage block carries an `@id` derived from the content, which the agent
 * asks Caddy for to tell whether Caddy still runs it (after a restart it runs the bootstrap).
 */
export function renderConfig(
  settings: EdgeSettings,
  paths: EdgePaths,
  routes: AppRoute[],
): { id: string; config: Record<string, unknown> } {
  const apps: Record<string, unknown> = {
    // The internal CA never installs its root into the host's trust store (that needs root and
    // would make every local client trust it).
    pki: { certificate_authorities: { local: { install_trust: false } } },
  };
  // Both ports are always listened on, domains or not, so that `edge install` finds a port that
  // is taken at once; Caddy adds its http→https redirects (and ACME HTTP-01 answers) to the
  // http server.
  apps.http = {
    http_port: settings.httpPort,
    https_port: settings.httpsPort,
    servers: {
      plexus: {
        listen: [`:${settings.httpsPort}`],
        routes: routes
          .filter((r) => r.hosts.length > 0)
          .map((r) => ({
            match: [{ host: [...r.hosts].sort() }],
            handle: [{ handler: 'reverse_proxy', upstreams: [{ dial: `127.0.0.1:${r.port}` }] }],
            terminal: true,
          })),
      },
      plexus_http: { listen: [`:${settings.httpPort}`], routes: [] },
    },
  };
  if (settings.issuer === 'internal') {
    apps.tls = { automation: { policies: [{ issuers: [{ module: 'internal' }] }] } };
  } else if (settings.acmeCa) {
    // The operator's CA only: no fallback to a public one it did not choose.
    const issuer = {
      module: 'acme',
      ca: settings.acmeCa,
      ...(settings.email ? { email: settings.email } : {}),
      ...(settings.acmeCaRoot && paths.acmeCaRoot ? { trusted_roots_pem_files: [paths.acmeCaRoot] } : {}),
    };
    apps.tls = { automation: { policies: [{ issuers: [issuer] }] } };
  } else if (settings.email) {
    apps.tls = {
      automation: {
        policies: [
          {
            issuers: [
              { module: 'acme', email: settings.email },
              { module: 'zerossl', email: settings.email },
            ],
          },
        ],
      },
    };
  }
  const body = { admin: adminBlock(paths), storage: { module: 'file_system', root: paths.storage }, apps };
  const id = `plexus-${createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16)}`;
  return { id, config: { ...body, storage: { '@id': id, ...body.storage } } };
}
