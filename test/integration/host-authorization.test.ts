/**
 * Who may drive the edge and the services, through the real command service and the real
 * `edge.*`, `domains.*` and `services.*` actions (issue 18): installing or removing packages is
 * for admins; domains are the write role's, for its tenant's apps only; a forged, tampered or
 * replayed command and oversized arguments are refused before any handler runs, with a code.
 * Nothing here installs anything: every refused call would have (edge.install, services.install).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { signCommand } from '../../src/commands/envelope.ts';
import { ActionRegistry } from '../../src/core/actions.ts';
import type { Frame } from '../../src/core/frames.ts';
import { b64u, generateSigner, type Signer } from '../../src/crypto/ed25519.ts';
import {
  Edge,
  edgeActions,
  HostDaemons,
  hostMigrations,
  Services,
  serviceActions,
} from '../../src/host/index.ts';
import { silentLogger } from '../../src/logging/index.ts';
import { type GrantPayload, signGrant } from '../../src/mesh/operators.ts';
import { openStore } from '../../src/store/index.ts';
import { selfSignedCert } from '../helpers/certs.ts';
import { commandNode } from '../helpers/commands.ts';

const admin = generateSigner().signer;
const db = openStore(':memory:', hostMigrations);
const logger = silentLogger();
const daemons = new HostDaemons({ logDir: '/nonexistent', systemd: false }, { db, logger });
const tenants: Record<string, string | null> = { shop: 'blue', billing: null };
const edge = new Edge(
  { dir: '/nonexistent/edge' },
  { db, logger, daemons, upstreams: { upstreamOf: () => 8080 } },
);
const services = new Services({
  db,
  logger,
  daemons,
  appExists: (a) => a in tenants,
  setAppEnv: () => ({ pendingRestart: false }),
});
const actions = new ActionRegistry();
actions.register(
  ...edgeActions(edge, {
    appExists: (a) => a in tenants,
    upstreamOf: () => 8080,
    tenantOfApp: (a) => tenants[a],
    resolve: async () => ['192.0.2.1'],
    localAddresses: () => ['127.0.0.1'],
  }),
  ...serviceActions(services),
);
const { membership, self, service } = commandNode({ admin, actions });

function grant(role: GrantPayload['role'], extra: Partial<GrantPayload> = {}): Signer {
  const key = generateSigner().signer;
  membership.operators.accept(
    signGrant({ kid: key.kid, pubkey: b64u(key.publicKey), role, at: Date.now(), ...extra }, admin),
  );
  return key;
}

async function send(envelope: unknown): Promise<Frame> {
  const frames: Frame[] = [];
  await service.handle(envelope as never, (async function* () {})(), async (f) => void frames.push(f), {
    via: 'http',
    signal: new AbortController().signal,
  });
  return frames.at(-1)!;
}
const run = (key: Signer, action: string, args: Record<string, unknown>) =>
  send(signCommand(key, { target: self, action, args }).envelope);
const codeOf = (f: Frame) => (f.type === 'error' ? f.error.code : 'ok');

after(() => db.close());

/** A real certificate (made once by openssl) for the PEM checks of `edge install --acme-ca-root`. */
const certDir = mkdtempSync(join(tmpdir(), 'plexus-acme-root-'));
const PEM = readFileSync(selfSignedCert(certDir, 'ca', { cn: 'test-ca' }).cert, 'utf8');
rmSync(certDir, { recursive: true, force: true });

describe('host actions as signed commands', () => {
  it('installing or removing packages takes an admin', async () => {
    const viewer = grant('viewer');
    const operator = grant('operator', { exec: true });
    for (const key of [viewer, operator]) {
      assert.equal(
        codeOf(await run(key, 'edge.install', { httpsPort: 8443, httpPort: 8080 })),
        'FORBIDDEN_ROLE',
      );
      assert.equal(codeOf(await run(key, 'edge.uninstall', {})), 'FORBIDDEN_ROLE');
      assert.equal(codeOf(await run(key, 'services.install', { name: 'redis' })), 'FORBIDDEN_ROLE');
      assert.equal(
        codeOf(await run(key, 'services.remove', { name: 'redis', purge: true })),
        'FORBIDDEN_ROLE',
      );
    }
    assert.equal(
      codeOf(await run(viewer, 'domains.add', { app: 'billing', host: 'a.test', dnsCheck: false })),
      'FORBIDDEN_ROLE',
    );
    // Reads are for every role; the admin reaches the handler (no edge here, no such service).
    assert.equal(codeOf(await run(viewer, 'services.list', {})), 'ok');
    assert.equal(codeOf(await run(viewer, 'domains.list', {})), 'ok');
    assert.equal(codeOf(await run(admin, 'services.install', { name: 'mongodb' })), 'UNKNOWN_SERVICE');
    assert.equal(
      codeOf(await run(operator, 'domains.add', { app: 'billing', host: 'a.test', dnsCheck: false })),
      'EDGE_NOT_INSTALLED',
    );
  });

  it("a tenant's key cannot add a domain to another tenant's app, and learns nothing of it", async () => {
    const green = grant('operator', { tenant: 'green' });
    const other = await run(green, 'domains.add', { app: 'shop', host: 'shop.test', dnsCheck: false });
    const missing = await run(green, 'domains.add', { app: 'nope', host: 'nope.test', dnsCheck: false });
    assert.equal(codeOf(other), 'UNKNOWN_APP');
    assert.equal(codeOf(missing), 'UNKNOWN_APP');
    assert.equal(
      codeOf(await run(green, 'domains.add', { app: 'billing', host: 'b.test', dnsCheck: false })),
      'UNKNOWN_APP',
    );
  });

  it('a forged, tampered or replayed command is refused', async () => {
    const stranger = generateSigner().signer;
    assert.equal(codeOf(await run(stranger, 'services.install', { name: 'redis' })), 'UNKNOWN_KEY');
    const { envelope } = signCommand(admin, {
      target: self,
      action: 'services.install',
      args: { name: 'mongodb' },
    });
    // The payload is base64url JSON under the signature: rewritten to ask for redis, it no longer verifies.
    const json = Buffer.from(envelope.payload, 'base64url').toString().replace('mongodb', 'redis');
    assert.equal(codeOf(await send({ ...envelope, payload: b64u(Buffer.from(json)) })), 'BAD_SIGNATURE');
    assert.equal(codeOf(await send(envelope)), 'UNKNOWN_SERVICE');
    assert.equal(codeOf(await send(envelope)), 'REPLAY');
  });

  it('oversized or malformed arguments get INVALID_ARGUMENT', async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['domains.add', { app: 'billing', host: 'a'.repeat(10_000) }],
      ['domains.add', { app: 'Billing!', host: 'a.test' }],
      ['domains.add', { app: 'billing', host: 'a.test', extra: 1 }],
      ['domains.remove', { host: 'x'.repeat(254) }],
      ['services.install', { name: 'r'.repeat(65) }],
      ['services.install', { name: 'postgresql', version: '15 && reboot' }],
      ['services.install', { name: 'postgresql', for: '../etc' }],
      ['edge.install', { httpsPort: 70_000 }],
      ['edge.install', { httpsPort: 8443, httpPort: 8443 }],
      ['edge.install', { email: 'not an address' }],
      // An ACME CA is https only (RFC 8555), bounded, never with the internal CA; its root is PEM.
      ['edge.install', { acmeCa: 'http://127.0.0.1:14000/dir' }],
      ['edge.install', { acmeCa: 'file:///etc/passwd' }],
      ['edge.install', { acmeCa: `https://${'a'.repeat(3000)}.test/dir` }],
      ['edge.install', { acmeCa: 'https://ca.test/dir', issuer: 'internal' }],
      ['edge.install', { acmeCa: 'https://ca.test/dir', acmeCaRoot: 'not a certificate' }],
      ['edge.install', { acmeCa: 'https://ca.test/dir', acmeCaRoot: `${PEM}\n#!/bin/sh\nreboot\n` }],
      ['edge.install', { acmeCa: 'https://ca.test/dir', acmeCaRoot: PEM.repeat(30) }],
      ['edge.install', { acmeCaRoot: PEM }],
    ];
    for (const [action, args] of cases)
      assert.equal(
        codeOf(await run(admin, action, args)),
        'INVALID_ARGUMENT',
        `${action} ${JSON.stringify(args).slice(0, 80)}`,
      );
  });
});
