/** The tunnels' actions: expose/unexpose, services, forwards and counters. */

import { defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import type { Forwards } from './forwards.ts';
import { SERVICE_NAME_RE, type ServiceDirectory } from './services.ts';
import type { SocksServer } from './socks.ts';
import type { Tunnels } from './tunnels.ts';

/** What the actions act on. */
export interface TunnelActionsComponents {
  services: ServiceDirectory;
  forwards: Forwards;
  tunnels: Tunnels;
  socks?: SocksServer;
}

const serviceName = z
  .string()
  .max(63)
  .regex(SERVICE_NAME_RE, 'a service name is a DNS label: a-z, 0-9 and -');

/** Builds the tunnel actions. */
export function tunnelActions(c: TunnelActionsComponents) {
  return [
    defineAction({
      name: 'tunnels.expose',
      describe: 'expose a local port to the mesh under a service name',
      access: 'write',
      args: z.object({ name: serviceName, port: z.number().int().min(1).max(65535) }),
      handler: async (args) => c.services.expose(args.name, args.port),
    }),
    defineAction({
      name: 'tunnels.unexpose',
      describe: 'stop exposing a service',
      access: 'write',
      args: z.object({ name: serviceName }),
      handler: async (args) => {
        c.services.unexpose(args.name);
        return { name: args.name, exposed: false };
      },
    }),
    defineAction({
      name: 'tunnels.services',
      describe: 'services this node exposes to the mesh',
      access: 'read',
      args: z.object({}),
      handler: async () => c.services.list(),
    }),
    defineAction({
      name: 'tunnels.forward.add',
      describe: 'listen locally and tunnel every connection to service.node or node:port',
      access: 'write',
      args: z.object({ listen: z.string().max(300).optional(), target: z.string().min(1).max(300) }),
      handler: async (args) => c.forwards.add(args.listen, args.target),
    }),
    defineAction({
      name: 'tunnels.forward.list',
      describe: 'forwards of this node with their state',
      access: 'read',
      args: z.object({}),
      handler: async () => c.forwards.list(),
    }),
    defineAction({
      name: 'tunnels.forward.remove',
      describe: 'remove a forward',
      access: 'write',
      args: z.object({ id: z.string().min(1).max(64) }),
      handler: async (args) => c.forwards.remove(args.id),
    }),
    defineAction({
      name: 'tunnels.status',
      describe: 'exposed services, the SOCKS proxy, and counts of open tunnels and sockets',
      access: 'read',
      args: z.object({}),
      handler: async () => ({
        services: c.services.list(),
        socks: c.socks?.address ?? null,
        forwards: c.forwards.list().length,
        tunnels: c.tunnels.counters(),
        sockets: {
          forwardClients: c.forwards.activeSockets(),
          socksClients: c.socks?.activeSockets ?? 0,
        },
      }),
    }),
  ];
}
