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

/** Which roles may run which access class; `exec` is also open to grants with `exec: true`. */
export function authorize(key: OperatorKey, def: ActionDef, args: unknown): void {
  const { role } = key;
  const allowed =
    def.access === 'read' ||
    (def.access === 'write' && role !== 'viewer') ||
    (def.access === 'exec' && (role === 'admin' || (role === 'operator' && key.exec))) ||
    (def.access === 'admin' && role === 'admin');
  if (!allowed) throw new ForbiddenRoleError(role, def.name, def.access);
  if (key.tenant && role !== 'admin') {
    const parsed = def.args.safeParse(args ?? {});
    const tenant = parsed.success ? def.tenantOf?.(parsed.data) : undefined;
    // Reads: of the node (no tenant) or of this tenant's apps. Changes: only through actions that
    // are about an app (they have tenantOf), to an app of this tenant or to one that does not exist
    // yet (a deploy creates it in the caller's tenant); node-level changes are not for tenants.
    const allowed =
      def.access === 'read'
        ? tenant === undefined || tenant === key.tenant
        : def.tenantOf !== undefined && (tenant === undefined || tenant === key.tenant);
    if (!allowed) throw new ForbiddenTenantError(key.tenant, def.name, tenant);
  }
}
