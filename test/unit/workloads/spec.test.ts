import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseEnv } from '../../../src/cli/apps.ts';
import { openStore } from '../../../src/store/index.ts';
import { AppRepo } from '../../../src/workloads/app-repo.ts';
import { EnvRepo } from '../../../src/workloads/env-repo.ts';
import { workloadsMigrations } from '../../../src/workloads/migrations.ts';
import { checkCommand, firstProgram } from '../../../src/workloads/preflight.ts';
import { SecretBox } from '../../../src/workloads/secrets.ts';
import { parseHealth, resolveSpec } from '../../../src/workloads/spec.ts';
import { renderEnvFile, renderUnit } from '../../../src/workloads/systemd-unit.ts';
import { signWebhook, verifyWebhook } from '../../../src/workloads/webhook.ts';

const tmp = mkdtempSync(join(tmpdir(), 'plexus-wl-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('run spec', () => {
  it('flags beat the manifest, which beats the previous release; bundle env is not inherited', () => {
    const spec = resolveSpec(
      { port: 9000 },
      { cmd: 'node new.js', env: { A: 'manifest' } },
      { cmd: 'node old.js', port: 8000, restart: 'on-failure', env: undefined },
    );
    assert.deepEqual(spec, { cmd: 'node new.js', port: 9000, restart: 'on-failure', env: { A: 'manifest' } });
  });

  it('a deploy with no command anywhere is refused', () => {
    assert.throws(() => resolveSpec({}, undefined, undefined), { code: 'NO_COMMAND' });
  });

  it('parses health checks', () => {
    assert.deepEqual(parseHealth('http://:8080/healthz'), {
      kind: 'http',
      tls: false,
      host: '127.0.0.1',
      port: 8080,
      path: '/healthz',
    });
    assert.deepEqual(parseHealth('tcp:5432'), { kind: 'tcp', host: '127.0.0.1', port: 5432 });
    assert.throws(() => parseHealth('tcp:99999'), { code: 'BAD_HEALTH' });
  });

  it('refuses bad env names, and never echoes the value', () => {
    assert.deepEqual(parseEnv(['A_1=x=y', 'B=']), { A_1: 'x=y', B: '' });
    for (const bad of ['1A=x', 'A-B=x', 'NOEQUALS', '=x']) {
      assert.throws(
        () => parseEnv([bad]),
        (err: Error & { code?: string }) => {
          assert.equal(err.name, 'UsageError');
          assert.ok(!err.message.includes('=x'), 'value must not appear');
          return true;
        },
      );
    }
  });

  it('finds the program of a command, or refuses a missing one', () => {
    assert.equal(firstProgram('FOO=1 node server.js'), 'node');
    assert.equal(firstProgram('$HOME/bin/x'), undefined);
    writeFileSync(join(tmp, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    checkCommand('./run.sh --flag', tmp, '/usr/bin:/bin');
    checkCommand('sh -c true', tmp, '/usr/bin:/bin');
    assert.throws(() => checkCommand('definitely-not-a-program-xyz', tmp, '/usr/bin:/bin'), {
      code: 'COMMAND_NOT_FOUND',
    });
    assert.throws(() => checkCommand('./missing.sh', tmp, '/usr/bin:/bin'), { code: 'COMMAND_NOT_FOUND' });
  });
});

describe('secrets at rest', () => {
  const key = Buffer.alloc(32, 7);

  it('round-trips, with a fresh nonce every time', () => {
    const box = new SecretBox(key);
    const a = box.seal('api', 'TOKEN', 'hunter2');
    const b = box.seal('api', 'TOKEN', 'hunter2');
    assert.equal(a.nonce.length, 12);
    assert.notDeepEqual(a.nonce, b.nonce);
    assert.equal(box.open('api', 'TOKEN', a), 'hunter2');
  });

  it('a value moved to another app or name does not decrypt (AAD)', () => {
    const box = new SecretBox(key);
    const sealed = box.seal('api', 'TOKEN', 'hunter2');
    assert.throws(() => box.open('web', 'TOKEN', sealed), { code: 'SECRET_UNREADABLE' });
    assert.throws(() => box.open('api', 'OTHER', sealed), { code: 'SECRET_UNREADABLE' });
    assert.throws(() => new SecretBox(Buffer.alloc(32, 8)).open('api', 'TOKEN', sealed), {
      code: 'SECRET_UNREADABLE',
    });
  });

  it('the database file never holds the plaintext', () => {
    const path = join(tmp, 'secrets.db');
    const db = openStore(path, workloadsMigrations);
    new AppRepo(db).insert({
      name: 'api',
      spec: { cmd: 'x', restart: 'always', env: {} },
      desired: 'running',
      status: 'running',
    });
    const env = new EnvRepo(db, new SecretBox(key));
    const secret = 'sk_live_PLAINTEXT_MARKER_42';
    env.set('api', { STRIPE_KEY: secret });
    assert.equal(env.reveal('api').STRIPE_KEY, secret);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    for (const f of [path, `${path}-wal`]) {
      try {
        assert.ok(!readFileSync(f).includes(secret), `${f} holds the plaintext`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  });
});

describe('webhook signatures', () => {
  const secret = 'whsec_test';
  const body = Buffer.from('{"url":"http://x/y.tgz"}');
  const now = 1_700_000_000_000;
  const ts = String(now / 1000);

  it('accepts a good signature within the window', () => {
    const exp = verifyWebhook(secret, ts, signWebhook(secret, ts, body), body, now);
    assert.equal(exp, (now / 1000 + 300) * 1000);
  });

  it('refuses a bad signature, a changed body, an old timestamp, a missing secret', () => {
    const sig = signWebhook(secret, ts, body);
    const no = { name: 'WebhookAuthError', code: 'WEBHOOK_UNAUTHORIZED' };
    assert.throws(() => verifyWebhook(secret, ts, signWebhook('other', ts, body), body, now), no);
    assert.throws(() => verifyWebhook(secret, ts, sig, Buffer.from('{"url":"http://evil"}'), now), no);
    assert.throws(() => verifyWebhook(secret, ts, sig, body, now + 301_000), no);
    assert.throws(() => verifyWebhook(undefined, ts, sig, body, now), no);
    assert.throws(() => verifyWebhook(secret, undefined, sig, body, now), no);
    assert.throws(() => verifyWebhook(secret, ts, 'sha256=00', body, now), no);
  });
});

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
  };

  it('is hardened', () => {
    const unit = renderUnit(spec);
    for (const line of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'PrivateTmp=yes',
      'ReadWritePaths=/var/lib/plexus/apps/web',
      'EnvironmentFile=/run/plexus/web.env',
      'Restart=on-failure',
    ]) {
      assert.ok(unit.split('\n').includes(line), `missing ${line}`);
    }
    assert.ok(!unit.includes('a"b$c'), 'secrets go to the env file, never into the unit');
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

describe('shell script of a command', () => {
  it('execs simple commands (after leading assignments) and leaves compound ones to the shell', async () => {
    const { shellScript } = await import('../../../src/workloads/launch-spec.ts');
    assert.equal(shellScript('node server.js --port 8080'), 'exec node server.js --port 8080');
    assert.equal(
      shellScript('NODE_ENV=production node server.js'),
      'NODE_ENV=production exec node server.js',
    );
    assert.equal(shellScript('cd web && node server.js'), 'cd web && node server.js');
    assert.equal(shellScript('./run | tee out'), './run | tee out');
    assert.equal(shellScript('cd web'), 'cd web');
  });
});

describe('systemctl show', () => {
  it('maps unit states to app states', async () => {
    const { parseShow } = await import('../../../src/workloads/systemd-backend.ts');
    const show = (active: string, sub: string, pid = 0, restarts = 0) =>
      parseShow(
        `MainPID=${pid}\nActiveState=${active}\nSubState=${sub}\nNRestarts=${restarts}\nExecMainStartTimestamp=\n`,
      );
    assert.equal(show('active', 'running', 4242, 2).status, 'running');
    assert.equal(show('active', 'running', 4242, 2).restarts, 2);
    assert.equal(show('activating', 'auto-restart').status, 'crashloop');
    assert.equal(show('failed', 'failed').status, 'failed');
    assert.equal(show('inactive', 'dead').status, 'stopped');
    assert.equal(show('inactive', 'dead').pid, null);
  });
});
