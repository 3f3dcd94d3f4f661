/**
 * The workload manager in-process, with real app processes and a local HTTP server serving the
 * fixture app as zip and tar.gz: deploys, health-gated rollback, bad input that must leave the
 * running app and the database untouched, env changes, secrets at rest, pruning and webhooks.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HttpApi } from '../../src/api/http.ts';
import { mountHookRoutes } from '../../src/api/routes/hooks.ts';
import { ActionRegistry } from '../../src/core/actions.ts';
import { createLogger } from '../../src/logging/index.ts';
import { type Db, openStore } from '../../src/store/index.ts';
import {
  createProcessBackend,
  signWebhook,
  type Workloads,
  Workloads as WorkloadsClass,
  workloadsActions,
  workloadsMigrations,
} from '../../src/workloads/index.ts';
import { isSameProcess } from '../../src/workloads/proc.ts';
import { makeTarGz, makeZip, sha256, tarGzDir, zipDir } from '../helpers/archives.ts';
import { freePort, waitFor } from '../helpers/cluster.ts';
import { httpText } from '../helpers/http.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const FIXTURE = resolve(import.meta.dirname, '..', 'fixtures', 'workloads', 'app');
const SECRET = `sk_live_${randomBytes(8).toString('hex')}_MARKER`;
const root = mkdtempSync(join(tmpdir(), 'plexus-wl-'));
chmodSync(root, 0o711); // apps run as users of their own, who pass through to their folders
const bundles = new Map<string, Buffer>();
let server: Server;
let base: string;
let db: Db;
let w: Workloads;
let closeLog: () => void;
const logFile = join(root, 'agent.log');
const dbFile = join(root, 'plexus.db');
const masterKey = randomBytes(32);

/** A copy of the fixture app with some files changed. */
function variant(name: string, files: Record<string, string>): string {
  const dir = join(root, 'src', name);
  cpSync(FIXTURE, dir, { recursive: true });
  for (const [f, c] of Object.entries(files)) writeFileSync(join(dir, f), c);
  return dir;
}

/**
 * A URL source on the local plain-http server, pinned by the bundle's sha256 as plain http
 * needs (a URL the server does not serve gets any checksum: it fails before the check).
 */
const at = (path: string) => ({
  kind: 'url' as const,
  url: `${base}${path}`,
  sha256: bundles.has(path) ? sha256(bundles.get(path)!) : 'a'.repeat(64),
});

const info = async (port: number) =>
  JSON.parse((await httpText(port, '/info')).body) as { pid: number; version: string };

before(async () => {
  bundles.set('/v1.tgz', await tarGzDir(variant('v1', { 'version.txt': 'v1' })));
  bundles.set('/v2.zip', zipDir(variant('v2', { 'version.txt': 'v2' })));
  bundles.set('/v3.tgz', await tarGzDir(variant('v3', { 'version.txt': 'v3' })));
  bundles.set('/sick.tgz', await tarGzDir(variant('sick', { 'version.txt': 'sick', UNHEALTHY: '1' })));
  bundles.set('/crash.tgz', await tarGzDir(variant('crash', { CRASH_AT_START: '1' })));
  bundles.set('/nocmd.tgz', await tarGzDir(variant('nocmd', { 'plexus.yaml': 'cmd: ./does-not-exist\n' })));
  bundles.set(
    '/slip.zip',
    makeZip([
      { name: 'server.cjs', data: 'x' },
      { name: '../../../evil.txt', data: 'pwned' },
    ]),
  );
  bundles.set('/bomb.zip', makeZip([{ name: 'zeros', data: Buffer.alloc(3_000_000) }]));
  // The same attacks as tar.gz, which is extracted while it downloads.
  bundles.set(
    '/slip.tgz',
    await makeTarGz([
      { name: 'server.cjs', data: 'x' },
      { name: '../../../evil.txt', data: 'pwned' },
    ]),
  );
  bundles.set('/escape.tgz', await makeTarGz([{ name: 'etc', type: 'symlink', data: '/etc' }]));
  bundles.set('/bomb.tgz', await makeTarGz([{ name: 'zeros', data: Buffer.alloc(3_000_000) }]));
  server = createServer((req, res) => {
    if (req.url === '/stall') return; // never answers: a timeout
    const b = bundles.get(req.url ?? '');
    if (!b) {
      res.writeHead(404);
      return res.end('not found');
    }
    res.writeHead(200, { 'content-length': b.length });
    res.end(b);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  db = openStore(dbFile, workloadsMigrations);
  const log = createLogger({ file: logFile, stdout: false, level: 'debug' });
  closeLog = log.close;
  const logger = log.logger;
  const backend = createProcessBackend(
    { backoffMinMs: 20, crashloopLimit: 4, stopGraceMs: 1000, adoptedPollMs: 50 },
    { logger },
  );
  w = new WorkloadsClass(
    {
      appsDir: join(root, 'apps'),
      healthTimeoutMs: 4_000,
      downloadIdleTimeoutMs: 1_000,
      stopGraceMs: 1_000,
      extractLimits: { maxBytes: 1_000_000 },
    },
    { db, logger, backend, masterKey },
  );
  await w.start();
});

after(async () => {
  for (const a of w?.list() ?? []) await w.stopApp(a.name).catch(() => {});
  await w?.stop();
  killProcessesUnder(root); // whatever a failed test left running
  db?.close();
  closeLog?.();
  server?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('workload manager', () => {
  let port: number;
  const releaseDirs = () => readdirSync(join(root, 'apps', 'web', 'releases')).sort();

  it('deploys a tar.gz from a URL with its sha256, health gated', async () => {
    port = await freePort();
    const progress: string[] = [];
    const r = await w.deploy({
      app: 'web',
      source: { kind: 'url', url: `${base}/v1.tgz`, sha256: sha256(bundles.get('/v1.tgz')!) },
      flags: { cmd: `${process.execPath} server.cjs`, port, health: `http://:${port}/health` },
      onProgress: (p) => progress.push(p.phase),
    });
    assert.equal(r.status, 'running');
    assert.equal((await info(port)).version, 'v1');
    assert.ok(progress.includes('download') && progress.includes('extract'));
    assert.equal(readlinkSync(join(root, 'apps', 'web', 'current')), `releases/${r.release}`);
    const [app] = w.list();
    assert.deepEqual(Object.keys(app).sort(), [
      'cpuPct',
      'memMb',
      'name',
      'pid',
      'port',
      'release',
      'restarts',
      'status',
      'uptimeS',
    ]);
    assert.equal(app.port, port);
    assert.deepEqual(w.ports(), [{ name: 'web', port }]);
  });

  it('deploys a zip; the command, port and health carry over from the previous release', async () => {
    const changes: string[] = [];
    const onChange = (c: { kind: string }) => changes.push(c.kind);
    w.on('change', onChange);
    const r = await w.deploy({ app: 'web', source: at('/v2.zip') });
    w.off('change', onChange);
    assert.equal((await info(port)).version, 'v2');
    assert.equal(r.previous, w.releases.list('web')[1].id);
    assert.ok(changes.includes('deploy'), `change events: ${changes}`);
  });

  it('a release that fails its health check is rolled back by itself', async () => {
    const before = w.get('web').release;
    await assert.rejects(w.deploy({ app: 'web', source: at('/sick.tgz') }), {
      name: 'DeployFailedError',
      code: 'HEALTH_CHECK_FAILED',
    });
    assert.equal((await info(port)).version, 'v2');
    assert.equal(w.get('web').release, before);
    assert.equal(w.get('web').status, 'running');
    const rels = w.releases.list('web');
    assert.equal(rels[0].status, 'failed');
    assert.ok(!existsSync(join(root, 'apps', 'web', 'releases', rels[0].id)), 'failed release files removed');
    const kinds = w.events.list('web').map((e) => e.kind);
    assert.ok(kinds.includes('deploy-failed') && kinds.includes('rollback'));
  });

  it('a release that crashes at start is rolled back too', async () => {
    await assert.rejects(w.deploy({ app: 'web', source: at('/crash.tgz') }), {
      code: 'HEALTH_CHECK_FAILED',
    });
    assert.equal((await info(port)).version, 'v2');
  });

  describe('bad input leaves the running app, the releases and the database untouched', () => {
    const cases: [string, string, Record<string, unknown>][] = [
      ['a URL that 404s', 'DOWNLOAD_NOT_FOUND', { url: '/missing.tgz' }],
      ['a URL that times out', 'DOWNLOAD_TIMEOUT', { url: '/stall' }],
      ['a refused connection', 'DOWNLOAD_FAILED', { url: 'http://127.0.0.1:1/x.tgz' }],
      ['a wrong checksum', 'CHECKSUM_MISMATCH', { url: '/v3.tgz', sha256: 'a'.repeat(64) }],
      ['a zip-slip archive', 'ZIP_SLIP', { url: '/slip.zip' }],
      ['a zip bomb', 'ARCHIVE_TOO_LARGE', { url: '/bomb.zip' }],
      ['a zip-slip tar.gz', 'ZIP_SLIP', { url: '/slip.tgz' }],
      ['a tar.gz with a link out of the release', 'LINK_ESCAPE', { url: '/escape.tgz' }],
      ['a tar.gz bomb', 'ARCHIVE_TOO_LARGE', { url: '/bomb.tgz' }],
      ['a command that does not exist', 'COMMAND_NOT_FOUND', { url: '/nocmd.tgz' }],
    ];
    for (const [what, code, args] of cases) {
      it(what, async () => {
        const pid = (await info(port)).pid;
        const dirs = releaseDirs();
        const rows = w.releases.list('web').length;
        const url = String(args.url).startsWith('/') ? `${base}${args.url}` : String(args.url);
        await assert.rejects(
          w.deploy({
            app: 'web',
            source: { kind: 'url', url, sha256: (args.sha256 as string) ?? at(String(args.url)).sha256 },
          }),
          (err: Error & { code?: string }) => {
            assert.equal(err.code, code);
            assert.ok(!err.message.includes('\n'), 'one line');
            return true;
          },
        );
        assert.equal((await info(port)).pid, pid, 'app untouched');
        assert.deepEqual(releaseDirs(), dirs, 'no half-written release');
        assert.equal(w.releases.list('web').length, rows, 'no release row');
        assert.deepEqual(readdirSync(join(root, 'apps', 'web', 'tmp')), [], 'staging cleaned');
      });
    }

    it('a port already in use', async () => {
      const blocker = createServer();
      const taken = await freePort();
      await new Promise<void>((r) => blocker.listen(taken, '0.0.0.0', r));
      try {
        await assert.rejects(
          w.deploy({
            app: 'other',
            source: at('/v3.tgz'),
            flags: { cmd: `${process.execPath} server.cjs`, port: taken },
          }),
          { code: 'PORT_IN_USE' },
        );
        await assert.rejects(
          w.deploy({
            app: 'other',
            source: at('/v3.tgz'),
            flags: { cmd: `${process.execPath} server.cjs`, port },
          }),
          { code: 'PORT_IN_USE' },
        );
        assert.equal(w.apps.get('other'), undefined);
        assert.ok(!existsSync(join(root, 'apps', 'other')), 'no folder for an app that never deployed');
      } finally {
        blocker.close();
      }
    });

    it('an unknown app, a bad app name and a bad env name', async () => {
      await assert.rejects(w.rollback('nope'), { code: 'UNKNOWN_APP' });
      await assert.rejects(w.restartApp('nope'), { code: 'UNKNOWN_APP' });
      await assert.rejects(w.deploy({ app: 'Bad_Name', source: at('/v1.tgz') }), {
        code: 'BAD_APP_NAME',
      });
      const actions = new ActionRegistry();
      actions.register(...workloadsActions(w, { agentLog: logFile }));
      const ctx = {
        caller: { kind: 'local' as const, kid: 'local', role: 'admin' as const },
        signal: new AbortController().signal,
        emit: async () => {},
        input: (async function* () {})(),
      };
      const frame = await actions.run('apps.env.set', { app: 'web', vars: { '1BAD': 'x' } }, ctx);
      assert.equal(frame.type, 'error');
      assert.equal(frame.type === 'error' && frame.error.code, 'INVALID_ARGUMENT');
      const frame2 = await actions.run(
        'apps.deploy',
        { app: 'web', url: `${base}/v1.tgz`, env: { 'A-B': 'x' } },
        ctx,
      );
      assert.equal(frame2.type === 'error' && frame2.error.code, 'INVALID_ARGUMENT');
    });
  });

  it('one operation per app at a time', async () => {
    const slow = w.deploy({ app: 'web', source: at('/stall') });
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(w.restartApp('web'), { code: 'APP_BUSY' });
    assert.equal(w.get('web').status, 'deploying');
    await assert.rejects(slow, { code: 'DOWNLOAD_TIMEOUT' });
    assert.equal(w.get('web').status, 'running');
  });

  it('names the tenant each action touches, for tenant-limited operator keys', async () => {
    const actions = new ActionRegistry();
    actions.register(...workloadsActions(w, { agentLog: logFile }));
    const deploy = actions.get('apps.deploy')!;
    // No app yet: undefined (a deploy creates it in the key's tenant); an existing app has its
    // own, null for none (it belongs to admins).
    assert.equal(deploy.tenantOf?.({ app: 'fresh', url: 'http://x/y.tgz', tenant: 'acme' }), undefined);
    assert.equal(deploy.tenantOf?.({ app: 'web', url: 'http://x/y.tgz', tenant: 'acme' }), null);
    assert.equal(actions.get('apps.restart')!.tenantOf?.({ app: 'web' }), null);
    const caller = { kind: 'operator' as const, kid: 'k1', role: 'operator' as const, tenant: 'acme' };
    const ctx = {
      caller,
      signal: new AbortController().signal,
      emit: async () => {},
      input: (async function* () {})(),
    };
    const list = await actions.run('apps.list', {}, ctx);
    assert.deepEqual(list.type === 'result' && list.result, [], "another tenant's apps are not listed");
    const events = await actions.run('apps.events', {}, ctx);
    assert.deepEqual(events.type === 'result' && events.result, []);
  });

  it('rolls back to the previous release, and --to a chosen one', async () => {
    const [v2, v1] = w.releases.list('web').filter((r) => r.status !== 'failed');
    const r = await w.rollback('web');
    assert.equal(r.release, v1.id);
    assert.equal((await info(port)).version, 'v1');
    await w.rollback('web', v2.id);
    assert.equal((await info(port)).version, 'v2');
    await assert.rejects(w.rollback('web', '20000101-000000-0000'), { code: 'UNKNOWN_RELEASE' });
  });

  it('env changes apply on restart, and removed keys are really gone', async () => {
    const set = w.setEnv('web', { GREETING: 'hello', STRIPE_KEY: SECRET });
    assert.equal(set.pendingRestart, true);
    assert.equal((await httpText(port, '/env/GREETING')).status, 404, 'not before a restart');
    await w.restartApp('web');
    await waitFor(async () => (await httpText(port, '/env/GREETING')).body === 'hello', 5_000, 'env applied');
    assert.equal((await httpText(port, '/env/STRIPE_KEY')).body, SECRET);
    w.unsetEnv('web', ['GREETING']);
    await w.restartApp('web');
    await waitFor(
      async () => (await httpText(port, '/env/GREETING')).status === 404,
      5_000,
      'GREETING removed',
    );
    assert.deepEqual(
      w.listEnv('web', false).map((v) => Object.keys(v).sort()),
      [['name', 'updatedAt']],
    );
    assert.equal(w.listEnv('web', true)[0].value, SECRET);
  });

  it("the new release takes traffic without waiting out the old one's drain", async () => {
    w.setEnv('web', { DRAIN_MS: '4000' });
    await w.restartApp('web');
    await waitFor(() => info(port).catch(() => undefined), 5_000, 'web up');
    const old = (await info(port)).pid;
    const current = w.get('web').release!;
    const t0 = Date.now();
    await w.rollback('web');
    assert.ok(
      Date.now() - t0 < 3_000,
      `the new release started without waiting out the drain (${Date.now() - t0} ms)`,
    );
    assert.notEqual((await info(port)).pid, old);
    assert.ok(isSameProcess(old, null), 'the old release is still draining');
    await waitFor(() => !isSameProcess(old, null), 10_000, 'the old release to finish draining');
    await w.rollback('web', current); // back to where the next tests expect it
    w.unsetEnv('web', ['DRAIN_MS']);
    await w.restartApp('web');
  });

  it('keeps secrets out of the database file, the logs, events and the app list', async () => {
    db.pragma('wal_checkpoint(TRUNCATE)');
    for (const f of [dbFile, `${dbFile}-wal`, logFile]) {
      if (existsSync(f)) assert.ok(!readFileSync(f).includes(SECRET), `${f} holds the secret`);
    }
    assert.ok(!JSON.stringify(w.events.list(undefined, 500)).includes(SECRET));
    assert.ok(!JSON.stringify(w.list()).includes(SECRET));
  });

  it('deploys an upload (what deploy --dir sends) and keeps only the last 5 releases', async () => {
    const tgz = await tarGzDir(variant('up', { 'version.txt': 'uploaded' }));
    for (let i = 0; i < 4; i++) {
      const input = (async function* () {
        for (let o = 0; o < tgz.length; o += 1000)
          yield { chunk: tgz.subarray(o, o + 1000).toString('base64') };
        yield { end: true };
      })();
      await w.deploy({ app: 'web', source: { kind: 'upload', input, sha256: sha256(tgz) } });
    }
    assert.equal((await info(port)).version, 'uploaded');
    assert.equal(releaseDirs().length, 5);
    const live = w.releases.list('web').filter((r) => r.status === 'active' || r.status === 'ready');
    assert.deepEqual(live.map((r) => r.id).sort(), releaseDirs());
    // An upload that stops early is refused.
    const cut = (async function* () {
      yield { chunk: tgz.subarray(0, 100).toString('base64') };
    })();
    await assert.rejects(w.deploy({ app: 'web', source: { kind: 'upload', input: cut } }), {
      code: 'UPLOAD_INCOMPLETE',
    });
  });

  it('a first release that never comes up leaves the app failed, and rm removes it', async () => {
    const p2 = await freePort();
    await assert.rejects(
      w.deploy({
        app: 'loop',
        source: at('/crash.tgz'),
        flags: { cmd: `${process.execPath} server.cjs`, port: p2 },
        env: { LEAK: 'API_TOKEN', API_TOKEN: SECRET },
      }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'HEALTH_CHECK_FAILED');
        assert.match(err.message, /last log line: config: \*\*\*=\*\*\*/);
        assert.ok(!err.message.includes(SECRET), 'the secret the app printed is masked');
        return true;
      },
    );
    assert.equal(w.get('loop').status, 'failed');
    await w.removeApp('loop');
    assert.ok(!existsSync(join(root, 'apps', 'loop')));
  });

  describe('webhook deploys', () => {
    let api: HttpApi;
    let secret: string;
    before(async () => {
      api = new HttpApi(
        { listen: `127.0.0.1:${await freePort()}`, maxBodyBytes: 1024 * 1024 },
        { logger: createLogger({ stdout: false }).logger },
      );
      mountHookRoutes(api, { workloads: w });
      await api.start();
      secret = w.hookSecret('web', false).secret;
    });
    after(() => api?.stop());

    const call = (app: string, body: string, headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((res, rej) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: api.address!.port,
            path: `/v1/hooks/${app}`,
            method: 'POST',
            headers,
            agent: false,
          },
          (r) => {
            let b = '';
            r.on('data', (c) => (b += c));
            r.on('end', () => res({ status: r.statusCode ?? 0, body: b }));
          },
        );
        req.on('error', rej);
        req.end(body);
      });

    it('accepts a good call and deploys; refuses a replay, a bad signature, an old timestamp, an unknown app', async () => {
      const body = JSON.stringify({ url: `${base}/v3.tgz`, sha256: at('/v3.tgz').sha256 });
      const ts = String(Math.floor(Date.now() / 1000));
      const headers = {
        'x-plexus-timestamp': ts,
        'x-plexus-signature': signWebhook(secret, ts, body),
        'content-type': 'application/json',
      };
      const good = await call('web', body, headers);
      assert.equal(good.status, 202, good.body);
      await waitFor(async () => (await info(port)).version === 'v3', 15_000, 'webhook deploy');
      await waitFor(() => w.get('web').status === 'running', 15_000, 'webhook deploy to finish');
      assert.equal((await call('web', body, headers)).status, 401, 'replay refused');
      const bad = await call('web', body, {
        ...headers,
        'x-plexus-signature': signWebhook('wrong', ts, body),
      });
      assert.equal(bad.status, 401);
      assert.equal(JSON.parse(bad.body).error.code, 'WEBHOOK_UNAUTHORIZED');
      const old = String(Number(ts) - 3600);
      assert.equal(
        (
          await call('web', body, {
            ...headers,
            'x-plexus-timestamp': old,
            'x-plexus-signature': signWebhook(secret, old, body),
          })
        ).status,
        401,
      );
      assert.equal((await call('ghost', body, headers)).status, 401);
      // Rotation: the old secret stops working.
      const rotated = w.hookSecret('web', true).secret;
      assert.notEqual(rotated, secret);
      const ts2 = String(Math.floor(Date.now() / 1000) + 1);
      assert.equal(
        (
          await call('web', body, {
            ...headers,
            'x-plexus-timestamp': ts2,
            'x-plexus-signature': signWebhook(secret, ts2, body),
          })
        ).status,
        401,
      );
    });
  });
  it('after an agent death in the middle of a switch, the recorded release wins and nothing is left behind', async () => {
    const row = w.apps.get('web')!;
    const older = w.releases.list('web').find((r) => r.status === 'ready')!;
    const pid = (await info(port)).pid;
    await w.stop(); // the agent dies; the app keeps running
    // As if it died right after pointing `current` at an unconfirmed release.
    const { switchCurrent, appPaths } = await import('../../src/workloads/releases.ts');
    await switchCurrent(appPaths(join(root, 'apps'), 'web'), older.id);
    const logger = createLogger({ stdout: false }).logger;
    const backend = createProcessBackend(
      { backoffMinMs: 20, stopGraceMs: 1000, adoptedPollMs: 50 },
      { logger },
    );
    w = new WorkloadsClass(
      { appsDir: join(root, 'apps'), stopGraceMs: 1_000 },
      { db, logger, backend, masterKey },
    );
    await w.start();
    assert.equal(readlinkSync(join(root, 'apps', 'web', 'current')), `releases/${row.release}`);
    const now = await waitFor(() => info(port).catch(() => undefined), 10_000, 'app back');
    assert.notEqual(now?.pid, pid, 'the unconfirmed process was replaced');
    assert.equal(w.get('web').release, row.release);
  });
});
