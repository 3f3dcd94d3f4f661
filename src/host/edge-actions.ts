/**
 * The edge's actions: `edge.install|status|uninstall` and `domains.add|list|remove`. They run as
 * signed commands like every action, so `--node N` reaches a node behind NAT. Installing or
 * removing the edge installs packages as root: admins only. Domains are the `write` role's, for
 * the apps its tenant may see.
 */
import { X509Certificate } from 'node:crypto';
import { defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import { appNameSchema, portSchema } from '../workloads/spec.ts';
import { ACME_CA_ROOT_MAX_BYTES, DEFAULT_HTTP_PORT, DEFAULT_HTTPS_PORT } from './constants.ts';
import { addDomain, type DomainDeps, listDomains, removeDomain } from './domains.ts';
import type { Edge } from './edge.ts';
import { AppNotRoutableError, InvalidHostError, UnknownDomainError } from './errors.ts';
import { hostArgSchema } from './host-name.ts';

/** What the actions need besides the domain deps: whose app is which. */
export interface EdgeActionDeps extends Omit<DomainDeps, 'edge'> {
  /** An app's tenant, null for an admins' app, undefined for no such app. */
  tenantOfApp(app: string): string | null | undefined;
}

/** Builds the edge and domain actions. */
export function edgeActions(edge: Edge, deps: EdgeActionDeps) {
  const d: DomainDeps = { ...deps, edge };
  const noApp = (args: { app: string }) =>
    new AppNotRoutableError('UNKNOWN_APP', `no app '${args.app}' on this node; see 'plexus apps'`);
  return [
    defineAction({
      name: 'edge.install',
      describe: 'install Caddy (apt) and run it as the HTTPS edge for the apps domains',
      access: 'admin',
      args: z
        .strictObject({
          httpPort: portSchema.optional(),
          httpsPort: portSchema.optional(),
          issuer: z.enum(['acme', 'internal']).optional(),
          email: z.email().max(254).optional(),
          // RFC 8555: an ACME server is reached over https only.
          acmeCa: z
            .url({ protocol: /^https$/ })
            .max(2048)
            .optional(),
          acmeCaRoot: z
            .string()
            .max(ACME_CA_ROOT_MAX_BYTES)
            .refine(isPemCertificates, 'not PEM certificates')
            .optional(),
        })
        .refine(
          (a) => (a.httpPort ?? DEFAULT_HTTP_PORT) !== (a.httpsPort ?? DEFAULT_HTTPS_PORT),
          'the http and https ports must differ',
        )
        .refine(
          (a) => !a.acmeCa || a.issuer !== 'internal',
          'an ACME CA and the internal CA exclude each other',
        )
        .refine((a) => !a.acmeCaRoot || a.acmeCa, 'a root for the ACME CA needs the ACME CA (acmeCa)'),
      handler: (a, ctx) =>
        edge.install(
          {
            httpPort: a.httpPort ?? DEFAULT_HTTP_PORT,
            httpsPort: a.httpsPort ?? DEFAULT_HTTPS_PORT,
            issuer: a.issuer ?? 'acme',
            email: a.email ?? null,
            acmeCa: a.acmeCa ?? null,
            acmeCaRoot: a.acmeCaRoot ?? null,
          },
          ctx.signal,
        ),
    }),
    defineAction({
      name: 'edge.status',
      describe: 'whether the edge is installed, its ports, issuer, Caddy process and config',
      access: 'read',
      args: z.strictObject({}),
      handler: () => edge.status(),
    }),
    defineAction({
      name: 'edge.uninstall',
      describe: 'stop Caddy and remove the packages edge install added (domains are kept)',
      access: 'admin',
      args: z.strictObject({ purge: z.boolean().optional() }),
      handler: (a) => edge.uninstall(a.purge ?? false),
    }),
    defineAction({
      name: 'domains.add',
      describe: 'serve an app at https://HOST with an automatic certificate',
      access: 'write',
      tenantOf: (a) => deps.tenantOfApp(a.app),
      hidden: noApp,
      args: z.strictObject({ app: appNameSchema, host: hostArgSchema, dnsCheck: z.boolean().optional() }),
      handler: (a) => addDomain(d, a.app, a.host, a.dnsCheck !== false),
    }),
    defineAction({
      name: 'domains.list',
      describe: 'the domains this node serves, with their certificate state',
      access: 'read',
      args: z.strictObject({}),
      handler: async (_a, ctx) =>
        (await listDomains(d)).filter(
          (r) => !ctx.caller.tenant || deps.tenantOfApp(r.app) === ctx.caller.tenant,
        ),
    }),
    defineAction({
      name: 'domains.remove',
      describe: 'stop serving a domain',
      access: 'write',
      tenantOf: (a) => {
        const row = edge.repo.domain(a.host.toLowerCase());
        return row ? deps.tenantOfApp(row.app) : undefined;
      },
      hidden: (a) =>
        a.host.length ? new UnknownDomainError(a.host) : new InvalidHostError(a.host, 'it is empty'),
      args: z.strictObject({ host: hostArgSchema }),
      handler: (a) => removeDomain(d, a.host),
    }),
  ];
}

/** True when `text` is one or more PEM certificates and nothing else (what Caddy trusts a CA by). */
function isPemCertificates(text: string): boolean {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g) ?? [];
  if (
    !blocks.length ||
    text.replace(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g, '').trim()
  )
    return false;
  try {
    for (const b of blocks) new X509Certificate(b);
    return true;
  } catch {
    return false;
  }
}
