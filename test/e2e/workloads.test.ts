/**
 * Apps end to end with a real agent and the real CLI: deploy from a URL and from a directory,
 * the app list, logs, env with secrets, errors as one line, webhook deploys over the HTTP API,
 * and apps surviving `kill -9` of the agent (re-adopted, no duplicate) or vanishing while it was
 * down (started again).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isSameProcess } from '../../src/workloads/proc.ts';
import { signWebhook } from '../../src/workloads/webhook.ts';
import { sha256, tarGzDir } from '../helpers/archives.ts';
import { type Cluster, freePort, PLEXUS, startCluster, type TestNode, waitFor } from '../helpers/cluster.ts';
import { httpText } from '../helpers/http.ts';
import { killProcessesUnder, processesUnder } from '../helpers/processes.ts';

const FIXTURE = resolve(import.meta.dirname, '..', 'fixtures', 'workloads', 'app');
const SECRET = 'e2e_SECRET_VALUE_7f3a9c';
const scratch = mkdtempSync(join(tmpdir(), 'plexus-e2e-apps-'));

const appPid = async (port: number) => JSON.parse((await httpText(port, '/info')).body).pid as number;

/** The processes of app `web` of a data dir's agent. */
const appProcesses = (dataDir: string) => processesUnder(join(dataDir, 'apps', 'web'));

describe('apps end to end', () => {
  let cluster: Cluster;
  let n1: TestNode;
  let server: Server;
  let base: string;
  let port: number;
  let bundleSha: string;
  const cmd = `${process.execPath} server.cjs`;

  before(async () => {
    const v1 = join(scratch, 'v1');
    cpSync(FIXTURE, v1, { recursive: true });
    const bundle = await tarGzDir(v1);
    bundleSha = sha256(bundle);
    server = createServer((req, res) => {
      if (req.url !== '/app.tgz') {
        res.writeHead(404);
        return res.end();
      }
      res.writeHead(200, { 'content-length': bundle.length });
      res.end(bundle);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    port = await freePort();
    cluster = await startCluster(1);
    n1 = cluster.nodes[0];
  });

  after(async () => {
    if (n1) {
      await n1.run(['rm', 'web']).catch(() => {});
      killProcessesUnder(n1.dataDir);
    }
    await cluster?.stop();
    server?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('deploys from a URL and lists the app', async () => {
    const r = await n1.run([
      'deploy',
      'web',
      '--url',
      `${base}/app.tgz`,
      '--sha256',
      bundleSha,
      '--cmd',
      cmd,
      '--port',
      String(port),
      '--health',
      `http://:${port}/health`,
      '--env',
      `STRIPE_KEY=${SECRET}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^deployed web release \d{8}-\d{6}-[0-9a-f]{4}/);
    assert.equal((await httpText(port, '/env/STRIPE_KEY')).body, SECRET);
    const apps = await n1.json<Record<string, unknown>[]>(['apps']);
    assert.equal(apps.length, 1);
    // downtimeDeploys: this cluster's agents run without the kernel redirect (issue 18), and
    // an app with a port says its deploys stop then start.
    assert.deepEqual(Object.keys(apps[0]).sort(), [
      'cpuPct',
      'downtimeDeploys',
      'memMb',
      'name',
      'pid',
      'port',
      'release',
      'restarts',
      'status',
      'uptimeS',
    ]);
    assert.equal(apps[0].status, 'running');
    assert.equal(apps[0].port, port);
    assert.match(String(apps[0].downtimeDeploys), /off in the config/);
    assert.match(
      (await n1.run(['apps'])).stdout,
      /^note: deploys stop an app before starting the new release here/m,
    );
    assert.equal(apps[0].pid, await appPid(port));
  });

  it('deploys a directory packed by the CLI', async () => {
    const v2 = join(scratch, 'v2');
    cpSync(FIXTURE, v2, { recursive: true });
    writeFileSync(join(v2, 'version.txt'), 'v2-from-dir');
    const r = await n1.run(['deploy', 'web', '--dir', v2]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse((await httpText(port, '/info')).body).version, 'v2-from-dir');
    const rels = await n1.json<{ id: string; status: string; source: string }[]>(['releases', 'web']);
    assert.equal(rels.length, 2);
    assert.equal(rels[0].status, 'active');
    assert.equal(rels[0].source, 'upload');
  });

  it('shows app and agent logs', async () => {
    const r = await n1.run(['logs', 'web', '-n', '20']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /fixture v2-from-dir listening/);
    // Each app line carries its capture time: --since and --json work for apps too (issue 15).
    const t0 = Date.now();
    const j = await n1.run(['logs', 'web', '--json', '--since', '10m', '--nostream']);
    assert.equal(j.code, 0, j.stderr);
    const rows = j.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { app: string; time: number; line: string });
    assert.ok(
      rows.some((x) => /fixture v2-from-dir listening/.test(x.line)),
      j.stdout,
    );
    for (const x of rows)
      assert.ok(x.app === 'web' && x.time > t0 - 600_000 && x.time <= Date.now(), JSON.stringify(x));
    const sys = await n1.run(['logs', '--system', '-n', '50']);
    assert.equal(sys.code, 0, sys.stderr);
    assert.match(sys.stdout, /app deploy/);
    assert.ok(!sys.stdout.includes(SECRET), 'no secret in the agent log');
    assert.ok(!readFileSync(join(n1.dataDir, 'logs', 'agent.log'), 'utf8').includes(SECRET));
  });

  it('follows an app log live: a crash and the restart show up as they happen', async () => {
    const follow = spawn(PLEXUS, ['logs', 'web', '-f', '-n', '0', '--data-dir', n1.dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    follow.stdout.on('data', (d) => (out += d));
    try {
      await new Promise((r) => setTimeout(r, 1_000)); // let the follow start
      await httpText(port, '/crash').catch(() => {});
      await waitFor(
        () => /exit code 3/.test(out) && /listening/.test(out),
        10_000,
        'crash and restart in the followed log',
      ).catch((err: Error) => {
        throw new Error(`${err.message}; it showed: ${out.slice(-600)}`);
      });
    } finally {
      follow.kill('SIGINT');
      await new Promise((r) => follow.once('exit', r));
    }
    assert.equal(out.match(/listening/g)?.length, 1, '-n 0 starts at the end: only the restarted process');
  });

  it('env: names by default, values only with --reveal, and says when a restart is needed', async () => {
    const set = await n1.run(['env', 'set', 'web', 'GREETING=hi']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /plexus restart web/);
    const ls = await n1.run(['env', 'ls', 'web']);
    assert.match(ls.stdout, /STRIPE_KEY/);
    assert.ok(!ls.stdout.includes(SECRET));
    const reveal = await n1.run(['env', 'ls', 'web', '--reveal']);
    assert.ok(reveal.stdout.includes(SECRET));
  });

  it('bad input: one line on stderr, exit 1 (2 for usage), the app untouched', async () => {
    const pid = await appPid(port);
    for (const [args, code] of [
      [['deploy', 'web', '--url', `${base}/missing.tgz`, '--sha256', 'a'.repeat(64)], 1],
      // Plain http without --sha256: refused before anything is fetched (issue 13).
      [['deploy', 'web', '--url', `${base}/app.tgz`], 1],
      [['deploy', 'web', '--url', `${base}/app.tgz`, '--sha256', 'b'.repeat(64)], 1],
      [['restart', 'ghost'], 1],
      [['env', 'set', 'web', '1BAD=x'], 2],
      [['deploy', 'web'], 2],
    ] as [string[], number][]) {
      const r = await n1.run(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.ok(!r.stderr.includes('    at '), 'no stack trace');
    }
    assert.equal(await appPid(port), pid);
  });

  it('webhook deploys over the HTTP API; replays and bad signatures get 401', async () => {
    const secret = (await n1.run(['hook', 'secret', 'web'])).stdout.trim();
    assert.match(secret, /^whsec_/);
    const post = (body: string, ts: string, sig: string) =>
      new Promise<number>((res, rej) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: n1.apiPort,
            path: '/v1/hooks/web',
            method: 'POST',
            agent: false,
            headers: {
              'x-plexus-timestamp': ts,
              'x-plexus-signature': sig,
              'content-type': 'application/json',
            },
          },
          (r) => {
            r.resume();
            r.on('end', () => res(r.statusCode ?? 0));
          },
        );
        req.on('error', rej);
        req.end(body);
      });
    const body = JSON.stringify({ url: `${base}/app.tgz`, sha256: bundleSha });
    const ts = String(Math.floor(Date.now() / 1000));
    assert.equal(await post(body, ts, signWebhook(secret, ts, body)), 202);
    await waitFor(
      async () => JSON.parse((await httpText(port, '/info')).body).version === 'v1',
      20_000,
      'webhook deploy',
    );
    await waitFor(
      async () => (await n1.json<{ status: string }[]>(['apps']))[0]?.status === 'running',
      20_000,
      'webhook deploy to finish',
    );
    assert.equal(await post(body, ts, signWebhook(secret, ts, body)), 401, 'replay');
    assert.equal(await post(body, ts, signWebhook('nope', ts, body)), 401, 'bad signature');
  });

  it('apps survive kill -9 of the agent and are re-adopted with no duplicate', async () => {
    const pid = await appPid(port);
    await n1.stop('SIGKILL');
    // The release keeps running while the agent is down (here without the kernel redirect, the
    // cluster's agents share the host's network: it holds its declared port itself).
    assert.ok(isSameProcess(pid, null), 'still running while the agent is down');
    await n1.start();
    assert.equal(await appPid(port), pid, 'served on its port again, by the same process');
    const [app] = await n1.json<{ pid: number; status: string }[]>(['apps']);
    assert.equal(app.pid, pid);
    assert.equal(app.status, 'running');
    assert.deepEqual(appProcesses(n1.dataDir), [pid], 'exactly one process, the adopted one');
    // Adopted, it is still supervised: a crash is restarted.
    await httpText(port, '/crash').catch(() => {});
    await waitFor(
      async () => (await appPid(port).catch(() => pid)) !== pid,
      10_000,
      'restart of an adopted app',
    );
  });

  it('an app that vanished while the agent was down is started again', async () => {
    const pid = await appPid(port);
    await n1.stop('SIGKILL');
    process.kill(-pid, 'SIGKILL');
    await waitFor(async () => !(await httpText(port, '/health').catch(() => false)), 5_000, 'app gone');
    await n1.start();
    const newPid = await waitFor(() => appPid(port).catch(() => 0), 10_000, 'app started again');
    assert.notEqual(newPid, pid);
    assert.equal(appProcesses(n1.dataDir).length, 1);
  });

  it('stop, start, rollback and rm', async () => {
    assert.equal((await n1.run(['stop', 'web'])).code, 0);
    await assert.rejects(httpText(port, '/health'));
    const [stopped] = await n1.json<{ status: string; pid: number | null }[]>(['apps']);
    assert.equal(stopped.status, 'stopped');
    assert.equal(stopped.pid, null);
    assert.equal((await n1.run(['start', 'web'])).code, 0);
    await waitFor(() => httpText(port, '/health'), 10_000, 'started');
    const rb = await n1.run(['rollback', 'web']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(JSON.parse((await httpText(port, '/info')).body).version, 'v2-from-dir');
    const events = await n1.json<{ kind: string; at: number }[]>(['events', 'web', '-n', '200']);
    const kinds = new Set(events.map((e) => e.kind));
    for (const k of ['deploy', 'crash', 'restart', 'stop', 'start', 'rollback'])
      assert.ok(kinds.has(k), `no ${k} event`);
    assert.ok(!JSON.stringify(events).includes(SECRET));
    assert.equal((await n1.run(['rm', 'web'])).code, 0);
    await assert.rejects(httpText(port, '/health'));
    assert.deepEqual(await n1.json(['apps']), []);
  });
});
