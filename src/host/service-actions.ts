/**
 * The service actions: `services.install|list|remove`. Installing and removing packages as root
 * is for admins; listing is for every role. They run as signed commands, so `--node N` works on
 * a node behind NAT. No answer ever carries a database password (it goes to the app's env only).
 */

import { defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import { appNameSchema } from '../workloads/spec.ts';
import type { Services } from './services.ts';

const nameSchema = z.string().min(1).max(64);
const versionSchema = z
  .string()
  .regex(/^[0-9][0-9A-Za-z.+~-]{0,31}$/, 'a version is digits and dots, e.g. 7.0 or 15');

/** Builds the service actions. */
export function serviceActions(services: Services) {
  return [
    defineAction({
      name: 'services.install',
      describe:
        'install redis, postgresql or node with apt and run it; postgresql --for APP makes its database',
      access: 'admin',
      args: z.strictObject({
        name: nameSchema,
        version: versionSchema.optional(),
        for: appNameSchema.optional(),
      }),
      handler: (a, ctx) =>
        services.install(a.name, { version: a.version, forApp: a.for, signal: ctx.signal }),
    }),
    defineAction({
      name: 'services.list',
      describe: 'the services plexus installed, with version and state',
      access: 'read',
      args: z.strictObject({}),
      handler: () => services.list(),
    }),
    defineAction({
      name: 'services.remove',
      describe: 'stop a service and remove what its install added (data kept unless purge)',
      access: 'admin',
      args: z.strictObject({ name: nameSchema, purge: z.boolean().optional() }),
      handler: (a) => services.remove(a.name, a.purge ?? false),
    }),
  ];
}
