/** The telemetry actions: a fleet snapshot (`plexus top`) and history for charts. */

import { defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import { FINE_HISTORY_SPAN_S } from './constants.ts';
import { NoHistoryError } from './errors.ts';
import type { TelemetryService } from './service.ts';
import { watchNodes } from './watch.ts';

/** Arguments of `telemetry.history` (also the query of GET /v1/telemetry). */
export const historyArgs = z.object({
  node: z.string().min(1).max(128),
  /** Epoch ms; default: one fine span ago. */
  since: z.number().int().min(0).optional(),
  resolution: z.enum(['fine', 'coarse']).optional(),
});

/** Builds the telemetry actions over a started service. */
export function telemetryActions(svc: TelemetryService) {
  return [
    defineAction({
      name: 'telemetry.nodes',
      describe: 'this node and every peer with its latest telemetry record',
      access: 'read',
      args: z.object({}),
      handler: async () => svc.nodes(),
    }),
    defineAction({
      name: 'telemetry.history',
      describe: "a node's telemetry history for charts (1 h at the interval, 24 h at 1 min)",
      access: 'read',
      args: historyArgs,
      handler: async (args) => {
        const since = args.since ?? Date.now() - FINE_HISTORY_SPAN_S * 1000;
        const result = svc.history.query(args.node, since, args.resolution);
        if (!result) throw new NoHistoryError(args.node);
        return result;
      },
    }),
    defineAction({
      name: 'telemetry.history.apps',
      describe: "this node's apps' CPU and memory over the last hour (the dashboard's per-app charts)",
      access: 'read',
      args: z.object({ since: z.number().int().min(0).optional() }),
      handler: async (args) => svc.appHistory.query(args.since ?? Date.now() - FINE_HISTORY_SPAN_S * 1000),
    }),
    defineAction({
      name: 'telemetry.watch',
      describe: 'telemetry.nodes, sent again as records arrive, until the caller leaves (dashboards)',
      access: 'read',
      args: z.object({}),
      handler: async (_args, ctx) => {
        await watchNodes(
          svc.bus,
          () => svc.nodes(),
          (nodes) => ctx.emit({ nodes }),
          ctx.signal,
        );
        return { ended: true };
      },
    }),
  ];
}
