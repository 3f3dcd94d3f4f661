/** The mesh's actions: status, peers, ping, tokens and revocation. */

import { type ActionDef, defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import { DEFAULT_TOKEN_TTL_S } from './constants.ts';
import { CannotRevokeSelfError, NoDoorError, NotAdminError } from './errors.ts';
import type { NodeKeys } from './keys.ts';
import type { Conflict, Member, Membership } from './membership.ts';
import type { NodeStatus } from './node-status.ts';
import type { PeerView, PingResult } from './peer-directory.ts';
import type { PathPing, UntilDirectResult } from './ping-direct.ts';
import { nodeNameSchema, signRevocation } from './records.ts';
import { encodeToken, newTokenId, newTokenKey } from './token.ts';
import type { TokenLedger } from './token-ledger.ts';

/** What the actions use of the mesh (the Mesh; named here so that this file need not import it). */
export interface MeshActionsTarget {
  readonly peerId: string;
  readonly membership: Pick<Membership, 'revoke'>;
  readonly tokens: TokenLedger;
  status(): NodeStatus;
  peers(): PeerView[];
  ping(
    nameOrPeer: string,
    count: number,
    onReply: (ms: number, seq: number) => Promise<void>,
    signal: AbortSignal,
  ): Promise<PingResult>;
  pingUntilDirect(
    nameOrPeer: string,
    timeoutMs: number,
    onReply: (p: PathPing) => Promise<void>,
    signal: AbortSignal,
  ): Promise<UntilDirectResult>;
  resolve(nameOrPeer: string): Member;
  doorAddrs(): string[];
  conflicts(): Conflict[];
  publishRevocation(blob: unknown): void;
}

/** Builds the mesh actions; their handlers run once the mesh has started. */
export function meshActions(mesh: MeshActionsTarget, keys: NodeKeys): ActionDef[] {
  const requireAdmin = (what: string) => {
    if (!keys.admin) throw new NotAdminError(what);
    return keys.admin;
  };
  return [
    defineAction({
      name: 'node.status',
      describe: "this node's identity, addresses and peer counts",
      access: 'read',
      args: z.object({}),
      handler: async () => mesh.status(),
    }),
    defineAction({
      name: 'mesh.peers',
      describe: 'every other member with state, path and latency',
      access: 'read',
      args: z.object({}),
      handler: async () => mesh.peers(),
    }),
    defineAction({
      name: 'mesh.conflicts',
      describe: 'claims to a name or a token use that were refused or lost a race',
      access: 'read',
      args: z.object({}),
      handler: async () => mesh.conflicts(),
    }),
    defineAction({
      name: 'mesh.ping',
      describe: 'measure round-trip time to a node over the mesh',
      access: 'read',
      args: z.object({
        node: z.string().min(1).max(128),
        count: z.number().int().min(1).max(1000).default(3),
        /** Ping every second until the path is direct (a hole punch is started if relayed). */
        untilDirect: z.boolean().default(false),
        /** How long `untilDirect` waits, in seconds. */
        timeoutS: z.number().int().min(1).max(600).default(30),
      }),
      handler: (args, ctx) =>
        args.untilDirect
          ? mesh.pingUntilDirect(args.node, args.timeoutS * 1000, (p) => ctx.emit(p), ctx.signal)
          : mesh.ping(args.node, args.count, (ms, seq) => ctx.emit({ seq, ms }), ctx.signal),
    }),
    defineAction({
      name: 'mesh.token.create',
      describe: 'create a join token signed by the admin key',
      access: 'admin',
      args: z.object({
        ttlS: z
          .number()
          .int()
          .min(1)
          .max(365 * 86400)
          .default(DEFAULT_TOKEN_TTL_S),
        uses: z.number().int().min(1).max(100_000).default(1),
        tags: z.array(z.string().min(1).max(64)).max(32).default([]),
      }),
      handler: async (args) => {
        const admin = requireAdmin('creating a join token');
        const door = mesh.doorAddrs();
        if (door.length === 0) throw new NoDoorError();
        const id = newTokenId();
        const iat = Math.floor(Date.now() / 1000);
        const exp = iat + args.ttlS;
        const { seed, key } = newTokenKey();
        const token = encodeToken(
          {
            net: keys.network.networkId,
            adm: keys.network.adminPublicKey,
            tk: key.publicKey.toString('base64url'),
            door,
            iat,
            exp,
            id,
            uses: args.uses,
            tags: args.tags,
          },
          admin,
          seed,
        );
        mesh.tokens.record({ id, exp, uses: args.uses, tags: args.tags });
        return { token, id, expiresAt: exp * 1000, uses: args.uses, tags: args.tags, door };
      },
    }),
    defineAction({
      name: 'mesh.token.list',
      describe: 'tokens created on this node and how many times each was used',
      access: 'admin',
      args: z.object({}),
      handler: async () => mesh.tokens.list(),
    }),
    defineAction({
      name: 'mesh.token.revoke',
      describe: 'revoke a join token everywhere',
      access: 'admin',
      args: z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{8,32}$/, 'not a token id') }),
      handler: async (args) => {
        const admin = requireAdmin('revoking a token');
        const blob = signRevocation({ kind: 'token', subject: args.id, at: Date.now() }, admin);
        const fresh = mesh.membership.revoke(blob);
        mesh.publishRevocation(blob);
        return { id: args.id, revoked: true, already: !fresh };
      },
    }),
    defineAction({
      name: 'mesh.revoke',
      describe: 'revoke a node: every member drops and refuses it',
      access: 'admin',
      args: z.object({
        node: nodeNameSchema.or(z.string().min(40).max(128)),
        reason: z.string().max(256).optional(),
      }),
      handler: async (args) => {
        const admin = requireAdmin('revoking a node');
        const m = mesh.resolve(args.node);
        if (m.peerId === mesh.peerId) {
          throw new CannotRevokeSelfError(m.name);
        }
        const blob = signRevocation(
          { kind: 'node', subject: m.peerId, at: Date.now(), reason: args.reason },
          admin,
        );
        mesh.membership.revoke(blob);
        mesh.publishRevocation(blob);
        return { name: m.name, peerId: m.peerId, revoked: true };
      },
    }),
  ];
}
