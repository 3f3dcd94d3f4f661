/**
 * Command authorisation: who signed an envelope (authentication: a known, unrevoked, unexpired
 * operator key whose signature verifies, within the validity window) and whether that key may
 * run the action it names (authorisation: role against the action's access class, tenant
 * against the app the action touches). The command service calls both; they decide, it acts.
 */
import type { ActionDef } from '../core/actions.ts';
import type { OperatorKey } from '../mesh/index.ts';
import { type CommandPayload, checkValidity, type Envelope, verifyEnvelopeSignature } from './envelope.ts';
import {
  ForbiddenRoleError,
  ForbiddenTenantError,
  KeyExpiredError,
  KeyRevokedError,
  UnknownKeyError,
} from './errors.ts';

/**
 * Checks the envelope's key and signature and the payload's validity window; returns the key.
 * Run at the door (the node the envelope arrived at) and again on the target.
 */
export function authenticate(
  lookupKey: (kid: string) => OperatorKey | undefined,
  envelope: Envelope,
  payload: CommandPayload,
  now: number,
): OperatorKey {
  const key = lookupKey(envelope.kid);
  if (!key) throw new UnknownKeyError(envelope.kid);
  if (key.revoked) throw new KeyRevokedError(envelope.kid);
  verifyEnvelopeSignature(envelope, key.publicKey);
  if (key.exp !== undefined && key.exp * 1000 <= now) throw new KeyExpiredError(envelope.kid);
  checkValidity(payload, now);
  return key;
}

/**
 * Whether `key` may run `def` with `args`. The tenant check comes first: a tenant-limited key
 * gets the action's own "no such object" answer for an object of another tenant or of nobody
 * (objects with no tenant belong to admins), before anything about the object, such as the
 * access a deploy to it would need, can show. Then the role against the invocation's access
 * class: `exec` is also open to operators whose grant has `exec: true`, `shell` to any key whose
 * grant has `shell: true` (a tenant-limited key never: a shell is node-wide).
 */
export function authorize(key: OperatorKey, def: ActionDef, args: unknown): void {
  const { role } = key;
  const parsed = def.args.safeParse(args ?? {});
  const access = (parsed.success ? def.accessOf?.(parsed.data) : undefined) ?? def.access;
  if (key.tenant && role !== 'admin') {
    const tenant = parsed.success ? def.tenantOf?.(parsed.data) : undefined;
    // Another tenant's object, an admins' one and a missing one all get the same answer.
    const hidden = parsed.success && tenant !== key.tenant ? def.hidden?.(parsed.data) : undefined;
    if (hidden) throw hidden;
    if (tenant !== undefined && tenant !== key.tenant)
      throw new ForbiddenTenantError(key.tenant, def.name, tenant ?? undefined);
    // Changes only through actions that are about an app (they have tenantOf), to an app of this
    // tenant or to one that does not exist yet (a deploy creates it in the caller's tenant);
    // node-level changes are not for tenants.
    if (access !== 'read' && def.tenantOf === undefined)
      throw new ForbiddenTenantError(key.tenant, def.name, undefined);
  }
  const allowed =
    access === 'read' ||
    (access === 'write' && role !== 'viewer') ||
    (access === 'exec' && (role === 'admin' || (role === 'operator' && key.exec))) ||
    (access === 'shell' && (role === 'admin' || key.shell)) ||
    (access === 'admin' && role === 'admin');
  if (!allowed) throw new ForbiddenRoleError(role, def.name, access);
}
