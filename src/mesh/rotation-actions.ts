/** The swarm-key actions: `mesh.swarm.rotate` (admin, on the admin's node) and `mesh.swarm.status`. */

import { type ActionDef, defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import { SwarmKeyError } from './errors.ts';
import type { Membership } from './membership.ts';
import type { SwarmKeyStatus, SwarmRotation } from './swarm-rotation.ts';
import type { TelemetryBus } from './telemetry.ts';

/** What the actions use of the mesh. */
export interface RotationActionsTarget {
  readonly rotation: Pick<SwarmRotation, 'rotate' | 'status'>;
  readonly membership: Pick<Membership, 'list'>;
  readonly telemetry: Pick<TelemetryBus, 'latest'>;
  readonly peerId: string;
}

/** One member's swarm-key epoch as its latest telemetry record states it. */
export interface MemberEpoch {
  name: string;
  peerId: string;
  /** null when no record of it has arrived (it is off, or not connected to us). */
  epoch: number | null;
}

/** Builds the swarm-key actions. */
export function rotationActions(mesh: RotationActionsTarget): ActionDef[] {
  return [
    defineAction({
      name: 'mesh.swarm.rotate',
      describe: 'move the whole mesh to a new swarm key (needs admin.key on this node)',
      access: 'admin',
      args: z.object({}),
      handler: async (_args, ctx) => {
        // The key is made and signed where admin.key is, and leaves that node only to members,
        // encrypted: run over the API, the caller would be trusting whichever agent answers.
        if (ctx.caller.kind !== 'local')
          throw new SwarmKeyError(
            'ROTATE_LOCAL_ONLY',
            "rotate the swarm key on the node that holds keys/admin.key: run 'plexus rotate-swarm-key' there, without --api or --node",
            'denied',
          );
        return mesh.rotation.rotate();
      },
    }),
    defineAction({
      name: 'mesh.swarm.status',
      describe: "this node's swarm-key epoch, a pending rotation, and each member's epoch",
      access: 'read',
      args: z.object({}),
      handler: async (): Promise<SwarmKeyStatus & { members: MemberEpoch[] }> => ({
        ...mesh.rotation.status(),
        members: mesh.membership
          .list()
          .filter((m) => m.peerId !== mesh.peerId)
          .map((m) => ({
            name: m.name,
            peerId: m.peerId,
            epoch: mesh.telemetry.latest(m.peerId)?.swarmEpoch ?? null,
          })),
      }),
    }),
  ];
}
