/**
 * Zero-downtime deploys (issue 18), process backend, one workload manager for the file: while a
 * bounded request loop runs on the app's declared port, a deploy, a rollback, a restart and a broken release
 * (fails its health check) must not fail one request; a request in flight when traffic moves
 * finishes on the old release, which then drains and stops; a registered traffic switch (what
 * the edge is) is told the new release's private port only once it is healthy, and one that
 * fails keeps the old release serving. The live port survives an agent restart, and an old release
 * a killed agent left draining is stopped when the agent starts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/logging/index.ts';
import { type Db, openStore } from '../../src/store/index.ts';
import { createProcessBackend, Workloads, workloadsMigrations } from '../../src/workloads/index.ts';
import { isSameProcess } from '../../src/workloads/proc.ts';
import type { TrafficSwitch } from '../../src/workloads/traffic.ts';
import { sha256, tarGzDir } from '../helpers/archives.ts';
import { freePort, waitFor } from '../helpers/cluster.ts';
import { httpText } from '../helpers/http.ts';
import { failures, startLoad } from '../helpers/load.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const FIXTURE = resolve(import.meta.dirname, '..', 'fixtures', 'workloads', 'app');
const root = mkdtempSync(join(tmpdir(), 'plexus-zd-'));
chmodSync(root, 0o711);
const masterKey = randomBytes(32);
let db: Db;
let w: Workloads;
let port: number;

const manager = () => {
  const logger = createLogger({ stdout: false }).logger;
  const backend = createProcessBackend({ stopGraceMs: 2_000, adoptedPollMs: 50 }, { logger });
  return new Workloads(
    { appsDir: join(root, 'apps'), healthTimeoutMs: 2_000, stopGraceMs: 2_000, drainTimeoutMs: 5_000 },
    { db, logger, backend, masterKey },
  );
};

async function bundle(version: string, extra: Record<string, string> = {}) {
  const dir = join(root, 'src', version);
  cpSync(FIXTURE, dir, { recursive: true });
  writeFileSync(join(dir, 'version.txt'), version);
  for (const [f, c] of Object.entries(extra)) writeFileSync(join(dir, f), c);
  const tgz = await tarGzDir(dir);
  const input = (async function* () {
    yield { chunk: tgz.toString('base64') };
    yield { end: true };
  })();
  return { kind: 'upload' as const, input, sha256: sha256(tgz) };
}

const info = async () => JSON.parse((await httpText(port, '/info')).body) as { pid: number; version: string };

/** Runs `during` under a request loop on the declared port; returns the loop's failures. */
async function underLoad(during: () => Promise<unknown>): Promise<{ failed: string; ok: number }> {
  const load = startLoad({ port, concurrency: 4, maxRequests: 20_000, maxMs: 20_000 });
  await waitFor(() => load.samples.length >= 20, 5_000, 'the loop to get going');
  await during().catch(() => {});
  // A few more after the switch: the new release must answer too.
  const n = load.samples.length;
  await waitFor(() => load.samples.length >= n + 20, 5_000, 'requests after the switch');
  const samples = await load.stop();
  return { failed: failures(samples), ok: samples.filter((s) => s.ok).length };
}

before(async () => {
  db = openStore(join(root, 'plexus.db'), workloadsMigrations);
  w = manager();
  await w.start();
  port = await freePort();
  await w.deploy({
    app: 'web',
    source: await bundle('v1'),
    flags: { cmd: `${process.execPath} server.cjs`, port, health: `http://:${port}/health` },
  });
});

after(async () => {
  for (const a of w?.list() ?? []) await w.stopApp(a.name).catch(() => {});
  await w?.stop();
  killProcessesUnder(root);
  db?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('zero-downtime deploys', () => {
  it('a deploy under a request loop fails no request; the release listens on a private port', async () => {
    const before = await info();
    const r = await underLoad(async () => w.deploy({ app: 'web', source: await bundle('v2') }));
    assert.equal(r.failed, '', `failed requests during the deploy: ${r.failed}`);
    assert.equal((await info()).version, 'v2');
    const live = w.upstreams.upstreamOf('web');
    assert.ok(live && live !== port, `a private port (${live}) behind the declared one (${port})`);
    assert.equal(JSON.parse((await httpText(live, '/info')).body).version, 'v2');
    await waitFor(() => !isSameProcess(before.pid, null), 10_000, 'the old release to stop');
  });

  it('a request in flight when traffic moves finishes on the old release, which then stops', async () => {
    const old = await info();
    const slow = httpText(port, '/slow?ms=1500', 8_000);
    await new Promise((r) => setTimeout(r, 200)); // it reached the old release
    await w.deploy({ app: 'web', source: await bundle('v3') });
    assert.equal((await info()).version, 'v3');
    assert.ok(isSameProcess(old.pid, null), 'the old release drains while its request is in flight');
    const answer = JSON.parse((await slow).body) as { pid: number; version: string };
    assert.equal(answer.version, 'v2', 'answered by the release it started on');
    await waitFor(() => !isSameProcess(old.pid, null), 5_000, 'the drained release to stop');
  });

  it('a release that fails its health check never gets traffic; the old one keeps serving', async () => {
    const old = await info();
    let error: unknown;
    const r = await underLoad(async () => {
      error = await w
        .deploy({ app: 'web', source: await bundle('sick', { UNHEALTHY: '1' }) })
        .catch((e) => e);
    });
    assert.equal((error as { code?: string })?.code, 'HEALTH_CHECK_FAILED');
    assert.equal(r.failed, '', `failed requests during the broken deploy: ${r.failed}`);
    assert.deepEqual(await info(), old, 'the same process still serves');
    assert.equal(w.get('web').status, 'running');
  });

  it('a rollback takes the same path: no failed request', async () => {
    const r = await underLoad(() => w.rollback('web'));
    assert.equal(r.failed, '', `failed requests during the rollback: ${r.failed}`);
    assert.equal((await info()).version, 'v2');
  });

  it('a restart takes the same path too: a new process, no failed request', async () => {
    const old = await info();
    const r = await underLoad(() => w.restartApp('web'));
    assert.equal(r.failed, '', `failed requests during the restart: ${r.failed}`);
    assert.notEqual((await info()).pid, old.pid);
    assert.equal(w.events.list('web', 1)[0]?.kind, 'restart');
  });

  it('a registered switch gets the private port once healthy; one that fails keeps the old release', async () => {
    const calls: [string, number][] = [];
    let fail = false;
    const edge: TrafficSwitch = {
      name: 'edge',
      async switchTo(app, p) {
        if (fail) throw new Error('admin API down');
        calls.push([app, p]);
      },
      async forget() {},
    };
    const remove = w.addTrafficSwitch(edge);
    try {
      await w.deploy({ app: 'web', source: await bundle('v4') });
      assert.deepEqual(calls, [['web', w.upstreams.upstreamOf('web')]]);
      await assert.rejects(w.deploy({ app: 'web', source: await bundle('sick2', { UNHEALTHY: '1' }) }), {
        code: 'HEALTH_CHECK_FAILED',
      });
      assert.equal(calls.length, 1, 'a release that failed its health check was never switched to');
      fail = true;
      const old = await info();
      await assert.rejects(w.deploy({ app: 'web', source: await bundle('v5') }), {
        code: 'TRAFFIC_SWITCH_FAILED',
      });
      assert.deepEqual(await info(), old, 'the old release kept serving');
    } finally {
      remove();
    }
  });

  it('after an agent restart the declared port is forwarded to the persisted live port', async () => {
    const live = w.upstreams.upstreamOf('web');
    const pid = (await info()).pid;
    await w.stop(); // the agent dies: the release keeps running on its private port
    assert.equal(JSON.parse((await httpText(live!, '/info')).body).pid, pid);
    // An old release a killed agent left draining: a group leader in a release folder that is
    // nobody's child any more (double fork).
    const cwd = join(root, 'apps', 'web', 'releases', w.get('web').release!);
    // setsid in a background job is not a group leader yet, so it execs sleep itself: $! is sleep.
    const stray = Number(
      execFileSync('sh', ['-c', 'setsid sleep 600 > /dev/null 2>&1 < /dev/null & echo $!'], {
        cwd,
        encoding: 'utf8',
      }),
    );
    after(() => {
      if (isSameProcess(stray, null)) process.kill(stray, 'SIGKILL');
    });
    w = manager();
    await w.start();
    assert.ok(!isSameProcess(stray, null), 'the stray old release was stopped');
    assert.equal(w.upstreams.upstreamOf('web'), live);
    assert.equal((await info()).pid, pid, 're-adopted, reached through the declared port');
    const r = await underLoad(async () => w.deploy({ app: 'web', source: await bundle('v6') }));
    assert.equal(r.failed, '', `failed requests during a deploy after the restart: ${r.failed}`);
  });
});
