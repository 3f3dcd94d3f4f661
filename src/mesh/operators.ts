/**
 * Operator keys (docs/architecture.md, Trust model; docs/commands.md): admin-signed grants
 * `{kid, pubkey, role, tenant?, exp?, exec?, at}` that travel with the membership records (gossip
 * topic `plexus/members/1` and the `/plexus/members/1.0.0` sync), and the repository of the grants
 * a node has learnt. A key is revoked with an admin-signed revocation of kind `operator`, which
 * always wins and is permanent: re-granting a revoked key is refused, so use a new key.
 * The admin key itself is always an operator with the `admin` role.
 *
 * This is the replicated grant store, so it lives in the mesh next to the membership that
 * gossips it; deciding what a key may do with a signed command is in src/commands/.
 */

import { isPlexusError } from '../core/errors.ts';
import * as z from '../core/zod.ts';
import { b64u, fromB64u, keyId, type Signer } from '../crypto/ed25519.ts';
import { isSignedBlob, openBlob, type SignedBlob, signBlob } from '../crypto/signed.ts';
import type { Db } from '../store/index.ts';
import { MAX_RECORD_BYTES } from './constants.ts';
import { GrantError } from './errors.ts';

const GRANT_DOMAIN = 'plexus-grant/1';

/** Roles, from least to most powerful. */
export const OPERATOR_ROLES = ['viewer', 'operator', 'admin'] as const;
/** An operator role. */
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

/** What an admin signs to grant a key. */
export const grantPayloadSchema = z.strictObject({
  /** Key id: the first 16 base64url chars of sha256(pubkey). */
  kid: z.string().regex(/^[A-Za-z0-9_-]{16}$/),
  /** Raw Ed25519 public key, base64url. */
  pubkey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  role: z.enum(OPERATOR_ROLES),
  /** Limits an operator to the apps of one tenant. */
  tenant: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/)
    .optional(),
  /** Expiry, unix seconds. */
  exp: z.number().int().positive().optional(),
  /** An operator (not just an admin) may run `node.exec`. */
  exec: z.boolean().optional(),
  /** The key may open shells, `exec -i/-t` sessions and copy files on any node (issue 16). */
  shell: z.boolean().optional(),
  /** Signing time, ms; of two grants for one key the later one wins (role changes). */
  at: z.number().int().positive(),
});
/** A grant's payload. */
export type GrantPayload = z.infer<typeof grantPayloadSchema>;

/** A key as the verifier sees it. */
export interface OperatorKey {
  kid: string;
  publicKey: Buffer;
  role: OperatorRole;
  tenant?: string;
  exec: boolean;
  /** May open interactive sessions (`plexus shell`, `exec -it`, `cp`): the grant's `shell`. */
  shell: boolean;
  /** Expiry in unix seconds, if any. */
  exp?: number;
  /** `admin-key` for the network's admin key, else `grant`. */
  source: 'admin-key' | 'grant';
  revoked: boolean;
  grantedAt?: number;
}

/** Signs a grant with the admin key. */
export function signGrant(payload: GrantPayload, admin: Signer): SignedBlob {
  return signBlob(GRANT_DOMAIN, grantPayloadSchema.parse(payload), admin);
}

/** Verifies a grant against the admin key; returns its payload. */
export function openGrant(blob: unknown, adminPublicKey: Uint8Array): GrantPayload {
  if (!isSignedBlob(blob, MAX_RECORD_BYTES)) throw new GrantError('MALFORMED', 'grant is malformed');
  const parsed = grantPayloadSchema.safeParse(openBlob(GRANT_DOMAIN, blob, adminPublicKey, 'grant'));
  if (!parsed.success) throw new GrantError('MALFORMED', 'grant payload is invalid');
  if (keyId(fromB64u(parsed.data.pubkey)) !== parsed.data.kid)
    throw new GrantError('MALFORMED', 'grant kid does not match its public key');
  return parsed.data;
}

interface Row {
  kid: string;
  pubkey: string;
  role: OperatorRole;
  tenant: string | null;
  exec: number;
  exp: number | null;
  at: number;
  blob: string;
}

/** The repository of operator grants (table `operator_grants`). */
export class OperatorGrants {
  readonly #db: Db;
  readonly #adminKey: Buffer;
  readonly #adminKid: string;
  readonly #isRevoked: (kid: string) => boolean;

  /** `isRevoked` answers from the membership's revocations (kind `operator`). */
  constructor(db: Db, adminPublicKey: Uint8Array, isRevoked: (kid: string) => boolean) {
    this.#db = db;
    this.#adminKey = Buffer.from(adminPublicKey);
    this.#adminKid = keyId(adminPublicKey);
    this.#isRevoked = isRevoked;
  }

  /** The admin key's id. */
  get adminKid(): string {
    return this.#adminKid;
  }

  /** Merges a grant; true if it was new (or newer than the one we had). */
  accept(blob: unknown): boolean {
    let g: GrantPayload;
    try {
      g = openGrant(blob, this.#adminKey);
    } catch (err) {
      if (isPlexusError(err)) return false;
      throw err;
    }
    if (g.kid === this.#adminKid || this.#isRevoked(g.kid)) return false;
    const existing = this.#db.prepare('SELECT at FROM operator_grants WHERE kid = ?').get(g.kid) as
      | { at: number }
      | undefined;
    if (existing && existing.at >= g.at) return false;
    const b = blob as SignedBlob;
    this.#db
      .prepare(
        `INSERT INTO operator_grants (kid, pubkey, role, tenant, exec, exp, at, blob)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(kid) DO UPDATE SET pubkey = excluded.pubkey, role = excluded.role,
           tenant = excluded.tenant, exec = excluded.exec, exp = excluded.exp, at = excluded.at,
           blob = excluded.blob`,
      )
      .run(
        g.kid,
        g.pubkey,
        g.role,
        g.tenant ?? null,
        g.exec ? 1 : 0,
        g.exp ?? null,
        g.at,
        JSON.stringify({ p: b.p, s: b.s }),
      );
    return true;
  }

  /** A key by id (the admin key included), or undefined if never granted. */
  lookup(kid: string): OperatorKey | undefined {
    if (kid === this.#adminKid) {
      return {
        kid,
        publicKey: this.#adminKey,
        role: 'admin',
        exec: true,
        shell: true,
        source: 'admin-key',
        revoked: false,
      };
    }
    const r = this.#db.prepare('SELECT * FROM operator_grants WHERE kid = ?').get(kid) as Row | undefined;
    if (!r) return this.#isRevoked(kid) ? this.#revokedOnly(kid) : undefined;
    return this.#toKey(r);
  }

  #revokedOnly(kid: string): OperatorKey {
    return {
      kid,
      publicKey: Buffer.alloc(0),
      role: 'viewer',
      exec: false,
      shell: false,
      source: 'grant',
      revoked: true,
    };
  }

  #toKey(r: Row): OperatorKey {
    return {
      kid: r.kid,
      publicKey: fromB64u(r.pubkey),
      role: r.role,
      tenant: r.tenant ?? undefined,
      exec: r.exec === 1,
      shell: grantsShell(r.blob),
      exp: r.exp ?? undefined,
      source: 'grant',
      revoked: this.#isRevoked(r.kid),
      grantedAt: r.at,
    };
  }

  /** Every key: the admin key first, then grants by time. */
  list(): OperatorKey[] {
    const rows = this.#db.prepare('SELECT * FROM operator_grants ORDER BY at').all() as Row[];
    return [this.lookup(this.#adminKid)!, ...rows.map((r) => this.#toKey(r))];
  }

  /** Signed grants for the membership snapshot. */
  snapshot(): SignedBlob[] {
    return (this.#db.prepare('SELECT blob FROM operator_grants').all() as { blob: string }[]).map(
      (r) => JSON.parse(r.blob) as SignedBlob,
    );
  }
}

/**
 * Whether a stored grant carries `shell: true`. Read from the signed blob kept beside the row
 * rather than from a column of its own: the blob is what was verified, and the flag needs no
 * migration of `operator_grants`, so nodes of any version keep one table shape.
 */
function grantsShell(blob: string): boolean {
  try {
    const { p } = JSON.parse(blob) as { p: string };
    return (JSON.parse(fromB64u(p).toString('utf8')) as { shell?: unknown }).shell === true;
  } catch {
    return false;
  }
}

/** Encodes a raw public key as it appears in a grant. */
export function encodePublicKey(publicKey: Uint8Array): string {
  return b64u(publicKey);
}
