/**
 * The workload actions (`apps.*`), served over the control socket now and as signed commands
 * later. `apps.deploy` takes its bundle from a URL, or as upload chunks in `ctx.input`
 * (`{chunk: base64}` frames, then `{end: true}`), which works the same over the local socket,
 * the HTTP API and the mesh.
 */

import { type ActionContext, defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import { APP_CAPABILITIES, MAX_LOG_LINES } from './constants.ts';
import type { DeployProgress } from './deploy-source.ts';
import { AdminOnlyError, AppNameTakenError, TenantMismatchError, UnknownAppError } from './errors.ts';
import { followFile, tailLines } from './log-files.ts';
import { appNameSchema, envNameSchema, runSpecFields } from './spec.ts';
import type { Workloads } from './workloads.ts';

const appArgs = z.object({ app: appNameSchema });
const sha256Schema = z.string().regex(/^[0-9a-fA-F]{64}$/, 'sha256 is 64 hex digits');

/** Builds the `apps.*` actions. `agentLog` is DATA/logs/agent.log for `logs --system`. */
export function workloadsActions(w: Workloads, opts: { agentLog: string }) {
  // An app's tenant, null for an app of admins (no tenant), undefined for no such app.
  const tenantOf = (args: { app: string }) => {
    const row = w.apps.get(args.app);
    return row ? row.tenant : undefined;
  };
  // A tenant-limited key gets the same answer for another tenant's app as for a missing one.
  const hidden = (args: { app: string }) => new UnknownAppError(args.app);
  // Changing what an app runs (its env included) is choosing code to run: the exec grant, and
  // an admin for an app that runs as root.
  const envAccess = (args: { app: string }) => (w.apps.get(args.app)?.runAs === 'root' ? 'admin' : 'exec');
  const progress = (ctx: ActionContext) => (p: DeployProgress) => void ctx.emit(p).catch(() => {});
  return [
    defineAction({
      name: 'apps.deploy',
      describe: 'deploy a bundle (URL or upload) as a new release, health gated with automatic rollback',
      access: 'write',
      accessOf: (args) => deployAccess(w, args),
      // An existing app keeps its tenant; a new one gets the deploying key's, or the one named.
      tenantOf,
      // The name belongs to an app this key may not see: it cannot have it, and learns no more.
      hidden: (args) => (w.apps.get(args.app) ? new AppNameTakenError(args.app) : undefined),
      // The run-spec fields are the deploy flags; `env` here is the app's (secret) env to set.
      args: runSpecFields
        .extend({
          app: appNameSchema,
          url: z.string().min(1).max(4096).optional(),
          /** Set when the bundle follows as input frames. */
          upload: z.strictObject({ bytes: z.number().int().nonnegative().optional() }).optional(),
          sha256: sha256Schema.optional(),
          /** Tenant of a new app (a tenant-limited operator must name its own). */
          tenant: z.string().min(1).max(64).optional(),
          /** Run as this existing user instead of the app's own (exec grant; root: admin + allowRoot). */
          user: z
            .string()
            .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a user name is a-z, 0-9, _ and -, up to 32')
            .optional(),
          /** An admin's consent to run the app as root. */
          allowRoot: z.boolean().optional(),
          /** Capabilities to give the app (admins); replaces what it had, [] for none. */
          capabilities: z.array(z.enum(APP_CAPABILITIES)).max(APP_CAPABILITIES.length).optional(),
        })
        .refine(
          (a) => (a.url === undefined) !== (a.upload === undefined),
          'give exactly one of url or upload',
        ),
      handler: ({ app, url, upload, sha256, env, tenant, user, allowRoot, capabilities, ...flags }, ctx) => {
        if (ctx.caller.tenant && tenant && tenant !== ctx.caller.tenant)
          throw new TenantMismatchError(ctx.caller.tenant, tenant);
        return w.deploy({
          app,
          source: url
            ? { kind: 'url', url, sha256 }
            : { kind: 'upload', input: ctx.input, sha256, bytes: upload?.bytes },
          flags,
          env,
          tenant: ctx.caller.tenant ?? tenant,
          user,
          allowRoot,
          capabilities: capabilities && [...new Set(capabilities)].sort(),
          signal: ctx.signal,
          onProgress: progress(ctx),
        });
      },
    }),
    defineAction({
      name: 'apps.rollback',
      describe: 'put the previous release (or --to RELEASE) back, health gated',
      access: 'write',
      tenantOf,
      hidden,
      args: z.object({
        app: appNameSchema,
        to: z
          .string()
          .regex(/^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$/, 'not a release id')
          .optional(),
      }),
      handler: (args, ctx) => w.rollback(args.app, args.to, progress(ctx)),
    }),
    defineAction({
      name: 'apps.releases',
      describe: "an app's releases, newest first",
      access: 'read',
      tenantOf,
      hidden,
      args: appArgs,
      handler: async (args) => {
        w.get(args.app);
        return w.releases
          .list(args.app)
          .map(({ spec, ...r }) => ({ ...r, cmd: spec.cmd, port: spec.port ?? null }));
      },
    }),
    defineAction({
      name: 'apps.list',
      describe: 'every app with status, pid, release, restarts, uptime, CPU, memory and port',
      access: 'read',
      args: z.object({}),
      handler: async (_args, ctx) => {
        // An app with a port is told when its deploys are not zero-downtime on this node (issue 18).
        const why = w.downtimeDeploys;
        return w
          .list()
          .filter((a) => !ctx.caller.tenant || w.apps.get(a.name)?.tenant === ctx.caller.tenant)
          .map((a) => (why && a.port ? { ...a, downtimeDeploys: why } : a));
      },
    }),
    defineAction({
      name: 'apps.events',
      describe: 'what happened to apps: deploys, rollbacks, crashes, restarts',
      access: 'read',
      tenantOf: (a: { app?: string }) => (a.app ? tenantOf({ app: a.app }) : undefined),
      hidden: (a: { app?: string }) => (a.app ? new UnknownAppError(a.app) : undefined),
      args: z.object({ app: appNameSchema.optional(), limit: z.number().int().min(1).max(500).default(50) }),
      handler: async (args, ctx) => {
        const events = w.events.list(args.app, args.limit);
        const tenant = ctx.caller.tenant;
        // A tenant-limited key sees only its own apps' history.
        return tenant ? events.filter((e) => w.apps.get(e.app)?.tenant === tenant) : events;
      },
    }),
    defineAction({
      name: 'apps.start',
      describe: 'start a stopped app',
      access: 'write',
      tenantOf,
      hidden,
      args: appArgs,
      handler: (args) => w.startApp(args.app),
    }),
    defineAction({
      name: 'apps.stop',
      describe: 'stop an app (SIGTERM, then SIGKILL after the grace period)',
      access: 'write',
      tenantOf,
      hidden,
      args: appArgs,
      handler: (args) => w.stopApp(args.app),
    }),
    defineAction({
      name: 'apps.restart',
      describe: 'restart an app (env changes apply)',
      access: 'write',
      tenantOf,
      hidden,
      args: appArgs,
      handler: (args) => w.restartApp(args.app),
    }),
    defineAction({
      name: 'apps.remove',
      describe: 'stop and delete an app with its releases, env and files',
      access: 'write',
      tenantOf,
      hidden,
      args: appArgs,
      handler: (args) => w.removeApp(args.app),
    }),
    defineAction({
      name: 'apps.logs',
      describe: "an app's (or the agent's) last lines, optionally followed",
      access: 'read',
      tenantOf: (a: { app?: string }) => (a.app ? tenantOf({ app: a.app }) : undefined),
      hidden: (a: { app?: string }) => (a.app ? new UnknownAppError(a.app) : undefined),
      args: z
        .object({
          app: appNameSchema.optional(),
          system: z.boolean().default(false),
          lines: z.number().int().min(0).max(MAX_LOG_LINES).default(100),
          follow: z.boolean().default(false),
        })
        .refine((a) => a.system !== (a.app !== undefined), 'give an app or system, not both'),
      handler: async (args, ctx) => {
        if (args.system && ctx.caller.role !== 'admin') {
          throw new AdminOnlyError('the agent log is for admins');
        }
        const send = (lines: string[]) => ctx.emit({ lines });
        const initial = args.system
          ? tailLines(opts.agentLog, args.lines)
          : await w.tail(args.app!, args.lines);
        if (initial.length) await send(initial);
        if (args.follow) {
          if (args.system) await followFile(opts.agentLog, send, ctx.signal);
          else await w.follow(args.app!, send, ctx.signal);
        }
        return { lines: initial.length };
      },
    }),
    defineAction({
      name: 'apps.env.set',
      describe: 'set env vars (encrypted at rest); they apply on the next (re)start',
      access: 'exec',
      accessOf: envAccess,
      tenantOf,
      hidden,
      args: z.object({ app: appNameSchema, vars: z.record(envNameSchema, z.string().max(64 * 1024)) }),
      handler: async (args) => w.setEnv(args.app, args.vars),
    }),
    defineAction({
      name: 'apps.env.unset',
      describe: 'remove env vars; they are gone after the next (re)start',
      access: 'exec',
      accessOf: envAccess,
      tenantOf,
      hidden,
      args: z.object({ app: appNameSchema, names: z.array(envNameSchema).min(1).max(1000) }),
      handler: async (args) => w.unsetEnv(args.app, args.names),
    }),
    defineAction({
      name: 'apps.env.list',
      describe: 'env var names; values only with reveal, for admins',
      access: 'read',
      tenantOf,
      hidden,
      args: z.object({ app: appNameSchema, reveal: z.boolean().default(false) }),
      handler: async (args, ctx) => {
        if (args.reveal && ctx.caller.role !== 'admin') {
          throw new AdminOnlyError('only an admin can reveal env values');
        }
        return w.listEnv(args.app, args.reveal);
      },
    }),
    defineAction({
      name: 'apps.hook.secret',
      describe: "show (or rotate) an app's webhook secret",
      access: 'admin',
      tenantOf,
      hidden,
      args: z.object({ app: appNameSchema, rotate: z.boolean().default(false) }),
      handler: async (args) => w.hookSecret(args.app, args.rotate),
    }),
  ];
}

/**
 * What a deploy needs (issue 13): `write` to ship a new bundle under the stored spec; `exec` to
 * set or change the command, the user or the env, since choosing a command is running code;
 * `admin` for anything that runs as root, or keeps running as root, and to give capabilities.
 */
function deployAccess(
  w: Workloads,
  a: {
    app: string;
    cmd?: string;
    user?: string;
    allowRoot?: boolean;
    env?: Record<string, string>;
    capabilities?: string[];
  },
): 'write' | 'exec' | 'admin' {
  const row = w.apps.get(a.app);
  if (a.allowRoot || row?.runAs === 'root') return 'admin';
  const caps = (list: string[] | undefined) => [...new Set(list ?? [])].sort().join(',');
  if (a.capabilities !== undefined && caps(a.capabilities) !== caps(row?.capabilities)) return 'admin';
  const current = row?.release ? (w.releases.get(row.name, row.release)?.spec ?? row.spec) : row?.spec;
  const changes =
    (a.cmd !== undefined && a.cmd !== current?.cmd) ||
    (a.user !== undefined && a.user !== (row?.runAs ?? undefined)) ||
    Object.keys(a.env ?? {}).length > 0;
  return changes ? 'exec' : 'write';
}
