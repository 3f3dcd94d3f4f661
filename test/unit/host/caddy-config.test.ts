/** The JSON config loaded into Caddy: admin on the unix socket always, one route per app, the issuer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aptArgv } from '../../../src/host/apt.ts';
import { bootstrapConfig, renderConfig } from '../../../src/host/caddy-config.ts';
import { renderDropIn } from '../../../src/host/daemon-systemd.ts';

/** The config as plain JSON, to walk into without types. */
const plain = (v: unknown) => JSON.parse(JSON.stringify(v));
const paths = { adminSocket: '/d/edge/admin/caddy.sock', storage: '/d/edge/storage' };
const settings = { httpPort: 8080, httpsPort: 8443, issuer: 'internal' as const, email: null };

describe('caddy config', () => {
  it('keeps the admin API on the unix socket in every config, never on TCP', () => {
    const admin = { listen: 'unix//d/edge/admin/caddy.sock', config: { persist: false } };
    assert.deepEqual(bootstrapConfig(paths).admin, admin);
    assert.deepEqual(renderConfig(settings, paths, []).config.admin, admin);
  });

  it('routes each app’s hosts to its port over https, with the internal issuer', () => {
    const { id, config } = renderConfig(settings, paths, [
      { app: 'web', hosts: ['b.test', 'a.test'], port: 3000 },
      { app: 'idle', hosts: [], port: 3001 },
    ]);
    const http = plain(config.apps).http;
    assert.equal(http.https_port, 8443);
    assert.deepEqual(http.servers.plexus.listen, [':8443']);
    assert.deepEqual(http.servers.plexus.routes, [
      {
        match: [{ host: ['a.test', 'b.test'] }],
        handle: [{ handler: 'reverse_proxy', upstreams: [{ dial: '127.0.0.1:3000' }] }],
        terminal: true,
      },
    ]);
    assert.deepEqual(plain(config.apps).tls.automation.policies[0].issuers, [{ module: 'internal' }]);
    assert.equal((config.storage as Record<string, string>)['@id'], id);
  });

  it('changes its id when a route moves, and not otherwise', () => {
    const a = renderConfig(settings, paths, [{ app: 'web', hosts: ['a.test'], port: 3000 }]).id;
    assert.equal(renderConfig(settings, paths, [{ app: 'web', hosts: ['a.test'], port: 3000 }]).id, a);
    assert.notEqual(renderConfig(settings, paths, [{ app: 'web', hosts: ['a.test'], port: 3002 }]).id, a);
  });

  it('ACME with an email names it to both CAs; without, Caddy’s defaults', () => {
    const acme = { ...settings, issuer: 'acme' as const };
    assert.equal((renderConfig(acme, paths, []).config.apps as Record<string, unknown>).tls, undefined);
    const withEmail = plain(renderConfig({ ...acme, email: 'ops@example.com' }, paths, []).config.apps);
    assert.deepEqual(
      withEmail.tls.automation.policies[0].issuers.map((i: { module: string; email: string }) => [
        i.module,
        i.email,
      ]),
      [
        ['acme', 'ops@example.com'],
        ['zerossl', 'ops@example.com'],
      ],
    );
  });

  it("an operator's ACME CA is the only issuer, trusted by its root file, and a new root is a new config", () => {
    const acme = { ...settings, issuer: 'acme' as const, acmeCa: 'https://ca.test/dir', acmeCaRoot: 'PEM' };
    const at = (file: string) => renderConfig(acme, { ...paths, acmeCaRoot: file }, []);
    assert.deepEqual(plain(at('/d/edge/acme-ca-root-1.pem').config.apps).tls.automation.policies[0].issuers, [
      { module: 'acme', ca: 'https://ca.test/dir', trusted_roots_pem_files: ['/d/edge/acme-ca-root-1.pem'] },
    ]);
    assert.notEqual(at('/d/edge/acme-ca-root-1.pem').id, at('/d/edge/acme-ca-root-2.pem').id);
    const noRoot = plain(
      renderConfig({ ...acme, acmeCaRoot: null, email: 'a@b.test' }, paths, []).config.apps,
    );
    assert.deepEqual(noRoot.tls.automation.policies[0].issuers, [
      { module: 'acme', ca: 'https://ca.test/dir', email: 'a@b.test' },
    ]);
  });

  it('the systemd drop-in replaces ExecStart (cleared first) and escapes %', () => {
    const text = renderDropIn({
      name: 'caddy',
      cmd: '',
      user: 'caddy',
      cwd: '/',
      unit: 'caddy.service',
      execStart: '/usr/bin/caddy run --config /d/100%/caddy.json',
    });
    assert.match(text, /^ExecStart=\nExecStart=\/usr\/bin\/caddy run --config \/d\/100%%\/caddy.json$/m);
    // The package's reload would load its Caddyfile (admin on TCP, not the agent's socket).
    assert.match(text, /^ExecReload=$/m);
  });

  it('apt runs in a transient unit under systemd (the agent unit makes the system read-only), else directly', () => {
    assert.deepEqual(aptArgv(['install', '-y', 'caddy'], false).slice(0, 1), ['apt-get']);
    const unit = aptArgv(['install', '-y', 'caddy'], true);
    assert.deepEqual(unit.slice(0, 3), ['systemd-run', '--pipe', '--wait']);
    assert.ok(unit.includes('--setenv=DEBIAN_FRONTEND=noninteractive'));
    assert.deepEqual(unit.slice(unit.indexOf('--') + 1, unit.indexOf('--') + 2), ['apt-get']);
  });
});
