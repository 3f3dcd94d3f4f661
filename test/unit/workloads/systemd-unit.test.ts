import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { renderEnvFile, renderUnit } from '../../../src/workloads/systemd-unit.ts';

const tmp = mkdtempSync(join(tmpdir(), 'plexus-wl-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('systemd units', () => {
  const spec = {
    app: 'web',
    release: '20260101-000000-abcd',
    cwd: '/var/lib/plexus/apps/web/releases/20260101-000000-abcd',
    cmd: 'node server.js --title "a b" --pct 100% $PORT',
    env: { PORT: '8080', SECRET: 'a"b$c\\d' },
    restart: 'on-failure' as const,
    logFile: '/var/lib/plexus/apps/web/logs/app.log',
    appDir: '/var/lib/plexus/apps/web',
    user: { name: 'plexus-app-web', uid: 990, gid: 990 },
  };

  it('is hardened', () => {
    const unit = renderUnit(spec);
    for (const line of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'PrivateTmp=yes',
      'EnvironmentFile=/run/plexus/web.env',
      'Restart=on-failure',
      // Issue 13: its own user, no capabilities, nothing of DATA but its own folder.
      'User=plexus-app-web',
      'Group=990',
      'CapabilityBoundingSet=',
      'RestrictSUIDSGID=yes',
      'SystemCallFilter=@system-service',
      'RestrictNamespaces=yes',
      'LockPersonality=yes',
      'ProtectHome=yes',
      'PrivateDevices=yes',
      'ProtectProc=invisible',
      'TemporaryFileSystem=/var/lib/plexus:ro',
      'BindPaths=/var/lib/plexus/apps/web',
      'InaccessiblePaths=-/run/plexus',
    ]) {
      assert.ok(unit.split('\n').includes(line), `missing ${line}`);
    }
    assert.ok(!unit.includes('a"b$c'), 'secrets go to the env file, never into the unit');
  });

  it('keeps exactly the capabilities an admin gave the app', () => {
    const unit = renderUnit({ ...spec, capabilities: ['NET_BIND_SERVICE'] }).split('\n');
    assert.ok(unit.includes('CapabilityBoundingSet=CAP_NET_BIND_SERVICE'));
    assert.ok(unit.includes('AmbientCapabilities=CAP_NET_BIND_SERVICE'));
  });

  it('runs an app that an admin allowed as root without User=, hardened all the same', () => {
    const unit = renderUnit({ ...spec, user: { name: 'root', uid: 0, gid: 0 } }).split('\n');
    assert.ok(!unit.some((l) => l.startsWith('User=')));
    assert.ok(unit.includes('CapabilityBoundingSet='));
  });

  it('passes systemd-analyze verify', (t) => {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0)
      return t.skip('systemd-analyze is not installed');
    const dir = mkdtempSync(join(tmp, 'unit-'));
    const file = join(dir, 'plexus-app-web.service');
    // verify checks that the binaries and paths exist: point them at real ones.
    writeFileSync(file, renderUnit({ ...spec, cwd: dir, appDir: dir }, { envFile: join(dir, 'web.env') }));
    writeFileSync(join(dir, 'web.env'), renderEnvFile(spec.env), { mode: 0o600 });
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', `systemd-analyze complained: ${r.stderr}`);
  });

  it('the env file escapes quotes, dollars and backslashes so systemd reads the value back intact', (t) => {
    const text = renderEnvFile({ V: 'a"b$c\\d\ne' });
    assert.equal(text, 'V="a\\"b\\$c\\\\d\\ne"\n');
    // sh reads the same escaping back; a cheap cross-check without systemd.
    const r = spawnSync('sh', ['-c', `${text.trim()}; printf %s "$V"`], { encoding: 'utf8' });
    if (r.status !== 0) return t.skip('sh not available');
    assert.equal(r.stdout, 'a"b$c\\d\\ne');
  });
});
