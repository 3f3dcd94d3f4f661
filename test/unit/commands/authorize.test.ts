/**
 * Command authorisation on its own: who signed an envelope (authenticate) and what that key may
 * run (authorize). The command service's tests show the same rules end to end.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { authenticate, authorize } from '../../../src/commands/authorize.ts';
import { signCommand } from '../../../src/commands/envelope.ts';
import { defineAction } from '../../../src/core/actions.ts';
import { generateSigner, type Signer } from '../../../src/crypto/ed25519.ts';
import type { OperatorKey } from '../../../src/mesh/index.ts';

const signer = generateSigner().signer;
const keyOf = (s: Signer, over: Partial<OperatorKey> = {}): OperatorKey => ({
  kid: s.kid,
  publicKey: Buffer.from(s.publicKey),
  role: 'operator',
  exec: false,
  shell: false,
  source: 'grant',
  revoked: false,
  ...over,
});

const nameOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as Error).name;
  }
  return 'accepted';
};

describe('authenticate', () => {
  const now = Date.now();
  const { envelope, payload } = signCommand(signer, { target: 'peer', action: 'apps.list' }, now);
  const run = (key: OperatorKey | undefined, at = now) =>
    nameOf(() => authenticate(() => key, envelope, payload, at));

  it('accepts a known, live key whose signature verifies within the validity window', () => {
    assert.equal(run(keyOf(signer)), 'accepted');
  });

  it('refuses an unknown key, a revoked one, a forged signature, an expired grant, an expired command', () => {
    assert.equal(run(undefined), 'UnknownKeyError');
    assert.equal(run(keyOf(signer, { revoked: true })), 'KeyRevokedError');
    // The kid matches, the key does not: the signature was made by someone else.
    assert.equal(
      run(keyOf(signer, { publicKey: Buffer.from(generateSigner().signer.publicKey) })),
      'BadSignatureError',
    );
    assert.equal(run(keyOf(signer, { exp: Math.floor(now / 1000) - 1 })), 'KeyExpiredError');
    assert.equal(run(keyOf(signer), now + 10 * 60_000), 'CommandExpiredError');
  });
});

describe('authorize', () => {
  const action = (
    access: 'read' | 'write' | 'exec' | 'shell' | 'admin',
    tenantOf?: (a: { app: string }) => string,
  ) =>
    defineAction({
      name: `test.${access}`,
      describe: access,
      access,
      args: z.object({ app: z.string() }),
      tenantOf,
      handler: async () => null,
    });
  const may = (key: OperatorKey, def: ReturnType<typeof action>, app = 'x') =>
    nameOf(() => authorize(key, def, { app }));

  it('roles against access classes', () => {
    const viewer = keyOf(signer, { role: 'viewer' });
    const op = keyOf(signer);
    const admin = keyOf(signer, { role: 'admin' });
    assert.deepEqual(
      (['read', 'write', 'exec', 'admin'] as const).map((a) => [
        may(viewer, action(a)),
        may(op, action(a)),
        may(admin, action(a)),
      ]),
      [
        ['accepted', 'accepted', 'accepted'],
        ['ForbiddenRoleError', 'accepted', 'accepted'],
        ['ForbiddenRoleError', 'ForbiddenRoleError', 'accepted'],
        ['ForbiddenRoleError', 'ForbiddenRoleError', 'accepted'],
      ],
    );
    assert.equal(may(keyOf(signer, { exec: true }), action('exec')), 'accepted');
  });

  it('a shell session needs the shell grant or the admin role, and never a tenant key', () => {
    assert.equal(may(keyOf(signer, { exec: true }), action('shell')), 'ForbiddenRoleError');
    assert.equal(may(keyOf(signer, { role: 'viewer' }), action('shell')), 'ForbiddenRoleError');
    assert.equal(may(keyOf(signer, { shell: true }), action('shell')), 'accepted');
    assert.equal(may(keyOf(signer, { role: 'viewer', shell: true }), action('shell')), 'accepted');
    assert.equal(may(keyOf(signer, { role: 'admin' }), action('shell')), 'accepted');
    assert.equal(
      may(keyOf(signer, { shell: true, tenant: 'blue' }), action('shell')),
      'ForbiddenTenantError',
    );
  });

  it("a tenant key stays in its tenant's apps and off node-level changes", () => {
    const blue = keyOf(signer, { tenant: 'blue' });
    const byPrefix = (a: { app: string }) => a.app.split('-')[0];
    assert.equal(may(blue, action('write', byPrefix), 'blue-web'), 'accepted');
    assert.equal(may(blue, action('write', byPrefix), 'red-web'), 'ForbiddenTenantError');
    assert.equal(may(blue, action('write')), 'ForbiddenTenantError');
    assert.equal(may(blue, action('read')), 'accepted');
    assert.equal(
      may(keyOf(signer, { role: 'admin', tenant: 'blue' }), action('write', byPrefix), 'red-web'),
      'accepted',
    );
  });

  it('an object of nobody, of another tenant and a missing one give a tenant key the same hidden answer', () => {
    class NoSuchThing extends Error {
      override name = 'NoSuchThing';
    }
    const tenants: Record<string, string | null> = { mine: 'blue', theirs: 'red', admins: null };
    const def = defineAction({
      name: 'test.app',
      describe: 'an app action',
      access: 'write',
      args: z.object({ app: z.string() }),
      tenantOf: (a) => tenants[a.app],
      hidden: (a) => (a.app in tenants || a.app === 'missing' ? new NoSuchThing(a.app) : undefined),
      handler: async () => null,
    });
    const blue = keyOf(signer, { tenant: 'blue' });
    assert.equal(
      nameOf(() => authorize(blue, def, { app: 'mine' })),
      'accepted',
    );
    for (const app of ['theirs', 'admins', 'missing'])
      assert.equal(
        nameOf(() => authorize(blue, def, { app })),
        'NoSuchThing',
        app,
      );
    // An unrestricted operator is not a tenant key: it may touch the admins' app.
    assert.equal(
      nameOf(() => authorize(keyOf(signer), def, { app: 'admins' })),
      'accepted',
    );
  });

  it('the access of one invocation can depend on its arguments (a deploy that picks the command is exec)', () => {
    const def = defineAction({
      name: 'test.deploy',
      describe: 'a deploy',
      access: 'write',
      accessOf: (a) => (a.cmd ? 'exec' : 'write'),
      args: z.object({ app: z.string(), cmd: z.string().optional() }),
      handler: async () => null,
    });
    assert.equal(
      nameOf(() => authorize(keyOf(signer), def, { app: 'a' })),
      'accepted',
    );
    assert.equal(
      nameOf(() => authorize(keyOf(signer), def, { app: 'a', cmd: 'sh' })),
      'ForbiddenRoleError',
    );
    assert.equal(
      nameOf(() => authorize(keyOf(signer, { exec: true }), def, { app: 'a', cmd: 'sh' })),
      'accepted',
    );
  });
});
