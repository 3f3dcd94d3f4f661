/**
 * The workload actions (`apps.*`), served over the control socket now and as signed commands
 * later. `apps.deploy` takes its bundle from a URL, or as upload chunks in `ctx.input`
 * (`{chunk: base64}` frames, then `{end: true}`), which works the same over the local socket,
 * the HTTP API and the mesh.
 */
import { z } from 'zod';
import { type ActionContext, defineAction } from '../core/actions.ts';
import { MAX_LOG_LINES } from './constants.ts';
import type { DeployProgress } from './deploy-source.ts';
import { AdminOnlyError } from './errors.ts';
import { followFile, tailLines } from './log-files.ts';
import { appNameSchema, envNameSchema, runSpecFields } from './spec.ts';
import type { Workloads } from './workloads.ts';

const appArgs = z.object({ app: appNameSchema });
const sha256Schema = z.string().regex(/^[0-9a-fA-F]{64}$/, 'sha256 is 64 hex digits');

/** Builds the `apps.*` actions. `agentLog` is DATA/logs/agent.log for `logs --system`. */
export function workloadsActions(w: Workloads, opts: { agentLog: string }) {
  const tenantOf = (args: { app: string }) => w.apps.get(args.app)?.tenant ?? undefined;
  const progress = (ctx: ActionContext) => (p: DeployProgress) => void ctx.emit(p).catch(() => {});
  return [
    defineAction({
      name: 'apps.deploy',
      describe: 'deploy a bundle (URL or upload) as a new release, health gated with automatic rollback',
      access: 'write',
      // An existing app keeps its tenant; a new one gets the tenant the deploy names.
      tenantOf: (args) => {
        const row = w.apps.get(args.app);
        return row ? (row.tenant ?? undefined) : args.tenant;
      },
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
        })
        .refine(
          (a) => (a.url === undefined) !== (a.upload === undefined),
          'give exactly one of url or upload',
        ),
      handler: ({ app, url, upload, sha256, env, tenant, ...flags }, ctx) =>
        w.deploy({
          app,
          source: url
            ? { kind: 'url', url, sha256 }
            : { kind: 'upload', input: ctx.input, sha256, bytes: upload?.bytes },
          flags,
          env,
          tenant: ctx.caller.tenant ?? tenant,
          signal: ctx.signal,
          onProgress: progress(ctx),
        }),
    }),
    defineAction({
      name: 'apps.rollback',
      describe: 'put the previous release (or --to RELEASE) back, health gated',
      access: 'write',
      tenantOf,
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
      handler: async (_args, ctx) =>
        w.list().filter((a) => !ctx.caller.tenant || w.apps.get(a.name)?.tenant === ctx.caller.tenant),
    }),
    defineAction({
      name: 'apps.events',
      describe: 'what happened to apps: deploys, rollbacks, crashes, restarts',
      access: 'read',
      tenantOf: (a: { app?: string }) => (a.app ? (w.apps.get(a.app)?.tenant ?? undefined) : undefined),
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
      args: appArgs,
      handler: (args) => w.startApp(args.app),
    }),
    defineAction({
      name: 'apps.stop',
      describe: 'stop an app (SIGTERM, then SIGKILL after the grace period)',
      access: 'write',
      tenantOf,
      args: appArgs,
      handler: (args) => w.stopApp(args.app),
    }),
    defineAction({
      name: 'apps.restart',
      describe: 'restart an app (env changes apply)',
      access: 'write',
      tenantOf,
      args: appArgs,
      handler: (args) => w.restartApp(args.app),
    }),
    defineAction({
      name: 'apps.remove',
      describe: 'stop and delete an app with its releases, env and files',
      access: 'write',
      tenantOf,
      args: appArgs,
      handler: (args) => w.removeApp(args.app),
    }),
    defineAction({
      name: 'apps.logs',
      describe: "an app's (or the agent's) last lines, optionally followed",
      access: 'read',
      tenantOf: (a: { app?: string }) => (a.app ? (w.apps.get(a.app)?.tenant ?? undefined) : undefined),
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
      access: 'write',
      tenantOf,
      args: z.object({ app: appNameSchema, vars: z.record(envNameSchema, z.string().max(64 * 1024)) }),
      handler: async (args) => w.setEnv(args.app, args.vars),
    }),
    defineAction({
      name: 'apps.env.unset',
      describe: 'remove env vars; they are gone after the next (re)start',
      access: 'write',
      tenantOf,
      args: z.object({ app: appNameSchema, names: z.array(envNameSchema).min(1).max(1000) }),
      handler: async (args) => w.unsetEnv(args.app, args.names),
    }),
    defineAction({
      name: 'apps.env.list',
      describe: 'env var names; values only with reveal, for admins',
      access: 'read',
      tenantOf,
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
      args: z.object({ app: appNameSchema, rotate: z.boolean().default(false) }),
      handler: async (args) => w.hookSecret(args.app, args.rotate),
    }),
  ];
}
