/**
 * Actions for operator keys and the audit log: `operator.add`, `operator.list`,
 * `operator.revoke`, `audit.list`, and `node.resolve` (name → peer ID, which a remote CLI needs
 * to address a command, with the node's admission, which lets the CLI check the answer back to
 * the admin key instead of taking this node's word for it). Grants and revocations are signed by the admin key: by this node's
 * admin.key, or already signed by a remote CLI that holds it and passed in as a blob.
 */

import { defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import { fromB64u, keyId, type Signer } from '../crypto/ed25519.ts';
import { type Mesh, NotAdminError, OPERATOR_ROLES, signGrant, signRevocation } from '../mesh/index.ts';
import type { AuditLog } from './audit.ts';
import {
  CannotRevokeAdminError,
  GrantOfRevokedKeyError,
  GrantRefusedError,
  MalformedRecordError,
  RevocationRefusedError,
} from './errors.ts';

const blobSchema = z.strictObject({ p: z.string().max(8192), s: z.string().max(128) });
const kidSchema = z.string().regex(/^[A-Za-z0-9_-]{16}$/, 'not a key id');

/** Builds the operator, audit and resolve actions. */
export function operatorActions(mesh: Mesh, admin: Signer | undefined, audit: AuditLog) {
  const grants = mesh.membership.operators;
  const requireAdmin = (what: string) => {
    if (!admin) throw new NotAdminError(what);
    return admin;
  };
  return [
    defineAction({
      name: 'operator.add',
      describe: 'grant an operator key a role (admin-signed, gossiped to every node)',
      access: 'admin',
      args: z.union([
        z.strictObject({ grant: blobSchema }),
        z.strictObject({
          pubkey: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a public key is 43 base64url characters'),
          role: z.enum(OPERATOR_ROLES),
          tenant: z
            .string()
            .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a tenant is a DNS label')
            .optional(),
          expiresS: z
            .number()
            .int()
            .min(60)
            .max(10 * 365 * 86400)
            .optional(),
          exec: z.boolean().optional(),
          shell: z.boolean().optional(),
        }),
      ]),
      handler: async (args) => {
        let blob: { p: string; s: string };
        if ('grant' in args) blob = args.grant;
        else {
          const kid = keyId(fromB64u(args.pubkey));
          blob = signGrant(
            {
              kid,
              pubkey: args.pubkey,
              role: args.role,
              tenant: args.tenant,
              exp: args.expiresS ? Math.floor(Date.now() / 1000) + args.expiresS : undefined,
              exec: args.exec || undefined,
              shell: args.shell || undefined,
              at: Date.now(),
            },
            requireAdmin('granting an operator key'),
          );
        }
        const fresh = grants.accept(blob);
        const kid = String((decodeBlob(blob) as { kid?: unknown })?.kid);
        const key = grants.lookup(kid);
        if (!fresh && (!key || key.revoked || key.source === 'admin-key')) {
          throw key?.revoked ? new GrantOfRevokedKeyError(kid) : new GrantRefusedError();
        }
        mesh.publishGrant(blob);
        return {
          kid,
          role: key!.role,
          tenant: key!.tenant ?? null,
          exec: key!.exec,
          shell: key!.shell,
          exp: key!.exp ?? null,
        };
      },
    }),
    defineAction({
      name: 'operator.list',
      describe: 'operator keys known to this node',
      access: 'read',
      args: z.object({}),
      handler: async () =>
        grants.list().map((k) => ({
          kid: k.kid,
          role: k.role,
          tenant: k.tenant ?? null,
          exec: k.exec,
          shell: k.shell,
          expiresAt: k.exp ? k.exp * 1000 : null,
          state: k.revoked ? 'revoked' : k.exp && k.exp * 1000 <= Date.now() ? 'expired' : 'active',
          source: k.source,
          grantedAt: k.grantedAt ?? null,
        })),
    }),
    defineAction({
      name: 'operator.revoke',
      describe: 'revoke an operator key on every node',
      access: 'admin',
      args: z.union([z.strictObject({ revocation: blobSchema }), z.strictObject({ kid: kidSchema })]),
      handler: async (args) => {
        const blob =
          'revocation' in args
            ? args.revocation
            : (() => {
                if (args.kid === grants.adminKid) throw new CannotRevokeAdminError();
                return signRevocation(
                  { kind: 'operator', subject: args.kid, at: Date.now() },
                  requireAdmin('revoking an operator key'),
                );
              })();
        const claimed = decodeBlob(blob) as { kind?: string; subject?: string };
        if (claimed?.kind !== 'operator' || typeof claimed.subject !== 'string')
          throw new RevocationRefusedError('not-operator');
        const subject = claimed.subject;
        const fresh = mesh.membership.revoke(blob);
        if (!fresh && !mesh.membership.isOperatorRevoked(subject))
          throw new RevocationRefusedError('not-signed');
        mesh.publishRevocation(blob);
        return { kid: subject, revoked: true, already: !fresh };
      },
    }),
    defineAction({
      name: 'audit.list',
      describe: 'commands this node accepted, refused or relayed',
      access: 'admin',
      args: z.object({
        limit: z.number().int().min(1).max(10_000).default(100),
        id: z.string().max(64).optional(),
      }),
      handler: async (args) => audit.list(args),
    }),
    defineAction({
      name: 'node.resolve',
      describe: "a node's peer ID and admission by name or peer ID (this node when none is given)",
      access: 'read',
      args: z.object({ node: z.string().min(1).max(128).optional() }),
      handler: async (args) => {
        const m = args.node ? mesh.resolve(args.node) : { name: mesh.name, peerId: mesh.peerId };
        return { name: m.name, peerId: m.peerId, admission: mesh.membership.admissionOf(m.peerId) ?? null };
      },
    }),
  ];
}

function decodeBlob(blob: { p: string }): unknown {
  try {
    return JSON.parse(fromB64u(blob.p).toString('utf8'));
  } catch {
    throw new MalformedRecordError();
  }
}
