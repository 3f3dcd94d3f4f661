// test-lane: side (mostly waits on apt and dpkg installing and removing packages; see scripts/test)
/**
 * Services end to end (issue 18), one agent for the file: `service install redis` (apt) answers
 * PONG, shows its version in `service ls` and is stopped and removed by `service rm`; PostgreSQL
 * for an app puts a role's credentials into the app's encrypted env (never printed) and the app
 * connects with them; refusals carry their codes. Puts back what it can: packages it added are
 * removed, the app's role and database dropped.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { socketClient } from '../../src/cli/client.ts';
import { aptUnavailableReason, installedVersion } from '../../src/host/apt.ts';
import { type Cluster, startCluster, type TestNode, waitFor } from '../helpers/cluster.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const execFileP = promisify(execFile);
const FIXTURE = resolve(import.meta.dirname, '..', 'fixtures', 'workloads', 'app');
const skip = aptUnavailableReason();
const scratch = mkdtempSync(join(tmpdir(), 'plexus-svc-'));

async function call(node: TestNode, action: string, args: Record<string, unknown>) {
  try {
    return { result: await socketClient(join(node.dataDir, 'plexus.sock')).call(action, args) };
  } catch (err) {
    return { error: (err as { body?: { code: string } }).body ?? { code: String(err) } };
  }
}

const ping = () =>
  execFileP('redis-cli', ['ping'], { timeout: 3_000 }).then(
    (r) => r.stdout.trim(),
    () => 'no answer',
  );

describe('services end to end', { skip }, () => {
  let cluster: Cluster;
  let n1: TestNode;
  let hadRedis = false;
  let leftBefore: string[] = [];
  /** Packages removed but with their configuration kept (dpkg state `rc`). */
  const configOnly = async () =>
    (await execFileP('dpkg-query', ['-W', '-f', '$' + '{db:Status-Abbrev} $' + '{Package}\n'])).stdout
      .split('\n')
      .filter((l) => l.startsWith('rc'))
      .map((l) => l.split(' ').at(-1)!);

  before(async () => {
    hadRedis = (await installedVersion('redis-server')) !== undefined;
    leftBefore = await configOnly();
    cluster = await startCluster(2);
    n1 = cluster.nodes[0];
  });

  after(async () => {
    if (n1) {
      for (const s of ['redis', 'postgresql'])
        await n1.run(['service', 'rm', s], { timeoutMs: 300_000 }).catch(() => {});
      await n1.run(['rm', 'shop']).catch(() => {});
      killProcessesUnder(n1.dataDir);
    }
    // `service rm` keeps configuration (and data) by design; the test takes back what it left.
    const left = (await configOnly()).filter((p) => !leftBefore.includes(p));
    if (left.length) await execFileP('dpkg', ['--purge', ...left]).catch(() => {});
    await cluster?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('refuses an unknown service, a database for redis, a bad version and removing what is not installed', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['services.install', { name: 'mongodb' }, 'UNKNOWN_SERVICE'],
      ['services.install', { name: 'x'.repeat(100) }, 'INVALID_ARGUMENT'],
      ['services.install', { name: 'redis', version: '7; rm -rf /' }, 'INVALID_ARGUMENT'],
      ['services.install', { name: 'redis', version: '1.2' }, 'APT_VERSION'],
      ['services.install', { name: 'redis', for: 'shop' }, 'SERVICE_NO_DATABASES'],
      ['services.install', { name: 'postgresql', for: 'nope' }, 'UNKNOWN_APP'],
      ['services.remove', { name: 'redis' }, 'SERVICE_NOT_INSTALLED'],
      ['services.remove', { name: 'mongodb' }, 'UNKNOWN_SERVICE'],
    ];
    for (const [action, args, code] of cases)
      assert.equal((await call(n1, action, args)).error?.code, code, JSON.stringify(args));
    const r = await n1.run(['service', 'install', 'mongodb']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    // --version is the service's, not the root command's (which would print plexus's version).
    const v = await n1.run(['service', 'install', 'redis', '--version', '1.2']);
    assert.equal(v.code, 1);
    assert.match(v.stderr, /redis-server 1\.2 is not available/);
  });

  it('service install redis answers PONG, ls shows its version, rm stops it (on n2, as signed commands relayed by n1)', async () => {
    const r = await n1.run(['--node', 'n2', 'service', 'install', 'redis', '--json'], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).state, 'running');
    assert.equal(await ping(), 'PONG');
    const ls = await n1.json<{ name: string; version: string; state: string }[]>([
      '--node',
      'n2',
      'service',
      'ls',
      '--json',
    ]);
    const redis = ls.find((s) => s.name === 'redis');
    assert.match(redis?.version ?? '', /^\d+\.\d+/);
    assert.equal(redis?.state, 'running');
    assert.deepEqual(await n1.json(['service', 'ls', '--json']), [], 'installed on n2, not n1');
    const rm = await n1.run(['--node', 'n2', 'service', 'rm', 'redis'], { timeoutMs: 300_000 });
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(await ping(), 'no answer');
    if (!hadRedis) assert.equal(await installedVersion('redis-server'), undefined);
  });

  it('postgresql --for APP: the app connects with the credentials put into its env', async () => {
    const dir = join(scratch, 'app');
    cpSync(FIXTURE, dir, { recursive: true });
    const cmd = 'psql "$DATABASE_URL" -Atc "select current_user, current_database()"; exec sleep 600';
    const d = await n1.run(['deploy', 'shop', '--dir', dir, '--cmd', cmd]);
    assert.equal(d.code, 0, d.stderr);
    const r = await n1.run(['service', 'install', 'postgresql', '--for', 'shop'], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DATABASE_URL/);
    const env = await n1.json<{ name: string; value: string }[]>(['env', 'ls', 'shop', '--reveal', '--json']);
    const password = env.find((e) => e.name === 'PGPASSWORD')?.value ?? '';
    assert.ok(password.length >= 24);
    assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password), 'the password is never printed');
    assert.ok(!readFileSync(join(n1.dataDir, 'logs', 'agent.log'), 'utf8').includes(password), 'nor logged');
    assert.equal((await n1.run(['restart', 'shop'])).code, 0);
    await waitFor(
      async () => /app_shop\|app_shop/.test((await n1.run(['logs', 'shop', '-n', '20'])).stdout),
      20_000,
      'the app connected',
    );
    // Put back: the app's role and database go before the service is removed.
    for (const sql of ['DROP DATABASE IF EXISTS app_shop', 'DROP ROLE IF EXISTS app_shop'])
      await execFileP('runuser', ['-u', 'postgres', '--', 'psql', '-h', '/var/run/postgresql', '-c', sql]);
  });
});
