/**
 * Zero-downtime deploys (issue 18) through the kernel redirect, process backend, one workload
 * manager for the file. The whole file runs again inside a fresh network namespace
 * (test/helpers/netns-self.ts), so its nftables table never touches the host's. While a bounded
 * request loop runs on the app's declared port, a deploy, a rollback, a restart, a broken release
 * (fails its health check or crashes at start) and an agent restart must not fail one request; a
 * request in flight when traffic moves finishes on the old release, which then drains and stops;
 * a registered traffic switch (what the edge is) is told the new release's private port only once
 * it is healthy, and one that fails keeps the old release serving. The kernel keeps one rule per
 * app whatever happens (racing deploys, an agent restart, removal), an app that listens on its
 * declared port itself (before issue 18, or the fallback) moves behind the redirect on its next
 * deploy without a failed request, and declared ports that would take others' traffic are refused.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
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
import { insideNetns, redirectUnavailable, runInFreshNetns } from '../helpers/netns-self.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const FIXTURE = resolve(import.meta.dirname, '..', 'fixtures', 'workloads', 'app');
const inside = insideNetns();
const skip = inside ? undefined : redirectUnavailable();
const root = inside ? mkdtempSync(join(tmpdir(), 'plexus-zd-')) : '';
if (inside) chmodSync(root, 0o711);
const masterKey = randomBytes(32);
let db: Db;
let w: Workloads;
let port: number;

/** The agent's own port in these tests (what the daemon derives from its config). */
const AGENT_PORT = 7071;

const manager = (redirect = true) => {
  const logger = createLogger({ stdout: false }).logger;
  const backend = createProcessBackend({ stopGraceMs: 2_000, adoptedPollMs: 50 }, { logger });
  return new Workloads(
    {
      appsDir: join(root, 'apps'),
      healthTimeoutMs: 2_000,
      stopGraceMs: 2_000,
      drainTimeoutMs: 5_000,
      reservedPorts: [AGENT_PORT],
      ...(redirect ? { redirect: {} } : {}),
    },
    { db, logger, backend, masterKey },
  );
};

/** The rules of the agent's table, one line each (both hooks). */
const rules = () =>
  (spawnSync('nft', ['list', 'table', 'inet', 'plexus'], { encoding: 'utf8' }).stdout ?? '')
    .split('\n')
    .filter((l) => l.includes('redirect'))
    .map((l) => l.trim());

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

/** A request loop on the declared port for `ms`, with nothing else going on. */
async function underLoadFor(ms: number): Promise<{ failed: string; ok: number }> {
  const load = startLoad({ port, concurrency: 2, maxRequests: 5_000, maxMs: ms });
  await new Promise((r) => setTimeout(r, ms));
  const samples = await load.stop();
  return { failed: failures(samples), ok: samples.filter((s) => s.ok).length };
}

if (!inside)
  describe('zero-downtime deploys through the kernel redirect', { skip }, () => {
    if (skip) console.log(`# skipped: ${skip}`);
    it('pass inside a fresh network namespace', async () => {
      const r = await runInFreshNetns(import.meta.filename);
      const summary = r.output.split('\n').filter((l) => /^\s*(✔|✖|ℹ (tests|pass|fail))/.test(l));
      console.log(summary.join('\n'));
      assert.equal(r.code, 0, r.output.slice(-6000));
    });
  });
else {
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

  describe('zero-downtime deploys (inside a network namespace of their own)', () => {
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

    it('an agent restart in the middle of a request loop fails no request: the rule stays in the kernel', async () => {
      const live = w.upstreams.upstreamOf('web');
      const pid = (await info()).pid;
      assert.deepEqual(
        rules(),
        Array(2).fill(`fib daddr type local tcp dport ${port} redirect to :${live} comment "app web"`),
      );
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
      let down = { failed: 'not measured', ok: 0 };
      const r = await underLoad(async () => {
        await w.stop(); // the agent dies: the release and the kernel rule stay
        down = await underLoadFor(300);
        w = manager();
        await w.start();
      });
      assert.equal(down.failed, '', 'the declared port is served while no agent runs');
      assert.ok(down.ok > 0);
      assert.equal(r.failed, '', `failed requests across the agent restart: ${r.failed}`);
      assert.ok(!isSameProcess(stray, null), 'the stray old release was stopped');
      assert.equal(w.upstreams.upstreamOf('web'), live);
      assert.equal((await info()).pid, pid, 're-adopted, reached through the declared port');
      assert.equal(rules().length, 2, 'one rule per hook, not one more per agent start');
      const d = await underLoad(async () => w.deploy({ app: 'web', source: await bundle('v6') }));
      assert.equal(d.failed, '', `failed requests during a deploy after the restart: ${d.failed}`);
    });

    it('an agent killed mid-switch (the kernel ahead of the database) is made consistent at start; rules of gone apps go', async () => {
      const live = w.upstreams.upstreamOf('web')!;
      await w.stop();
      // What kill -9 between the rule's switch and the database's update leaves: the rule points at
      // a release the database never recorded; plus the rule of an app removed meanwhile.
      const stale = `table inet plexus {}\ndelete table inet plexus\ntable inet plexus {\n chain output {\n  type nat hook output priority -100; policy accept;\n  fib daddr type local tcp dport ${port} redirect to :1 comment "app web"\n  fib daddr type local tcp dport 5555 redirect to :40999 comment "app ghost"\n }\n}\n`;
      const r = spawnSync('nft', ['-f', '-'], { input: stale, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      w = manager();
      await w.start();
      assert.deepEqual(
        rules(),
        Array(2).fill(`fib daddr type local tcp dport ${port} redirect to :${live} comment "app web"`),
      );
      assert.equal(JSON.parse((await httpText(port, '/info')).body).pid, w.get('web').pid);
    });

    it('a release that crashes at start never gets traffic', async () => {
      const old = await info();
      const r = await underLoad(async () => {
        await assert.rejects(
          w.deploy({ app: 'web', source: await bundle('crash', { CRASH_AT_START: '1' }) }),
          {
            code: 'HEALTH_CHECK_FAILED',
          },
        );
      });
      assert.equal(r.failed, '', `failed requests during the crashing deploy: ${r.failed}`);
      assert.deepEqual(await info(), old);
      assert.equal(rules().filter((l) => l.includes(`:${w.upstreams.upstreamOf('web')} `)).length, 2);
    });

    it('two racing deploys: one runs, the other is refused as busy, and one rule remains', async () => {
      const [a, b] = await Promise.allSettled([
        w.deploy({ app: 'web', source: await bundle('race-a') }),
        w.deploy({ app: 'web', source: await bundle('race-b') }),
      ]);
      const codes = [a, b].map((x) =>
        x.status === 'rejected' ? (x.reason as { code?: string }).code : 'ok',
      );
      assert.deepEqual(codes.sort(), ['APP_BUSY', 'ok']);
      const live = w.upstreams.upstreamOf('web');
      assert.deepEqual(
        rules(),
        Array(2).fill(`fib daddr type local tcp dport ${port} redirect to :${live} comment "app web"`),
      );
      assert.equal(
        JSON.parse((await httpText(port, '/info')).body).pid,
        JSON.parse((await httpText(live!, '/info')).body).pid,
      );
    });

    it("refuses a declared port that is the agent's, below 1024, or another app's private port", async () => {
      const flags = (p: number) => ({ cmd: `${process.execPath} server.cjs`, port: p });
      await assert.rejects(w.deploy({ app: 'evil', source: await bundle('e1'), flags: flags(AGENT_PORT) }), {
        code: 'PORT_RESERVED',
      });
      await assert.rejects(w.deploy({ app: 'evil', source: await bundle('e2'), flags: flags(22) }), {
        code: 'PORT_RESERVED',
      });
      const live = w.upstreams.upstreamOf('web')!;
      await assert.rejects(w.deploy({ app: 'evil', source: await bundle('e3'), flags: flags(live) }), {
        code: 'PORT_IN_USE',
      });
      assert.equal(rules().length, 2, 'no rule was added for a refused app');
    });

    it('an app on its declared port (the fallback, or before issue 18) moves behind the redirect on its next deploy, failing no request; rm removes its rule', async () => {
      const legacyPort = await freePort();
      await w.stop();
      w = manager(false); // the fallback: the release listens on the declared port itself
      await w.start();
      await w.deploy({
        app: 'legacy',
        source: await bundle('l1'),
        flags: {
          cmd: `${process.execPath} server.cjs`,
          port: legacyPort,
          health: `http://:${legacyPort}/health`,
        },
      });
      assert.equal(w.get('legacy').pid, JSON.parse((await httpText(legacyPort, '/info')).body).pid);
      assert.equal(w.upstreams.upstreamOf('legacy'), undefined, 'no private port in the fallback');
      await w.stop();
      w = manager();
      await w.start();
      const load = startLoad({ port: legacyPort, concurrency: 4, maxRequests: 20_000, maxMs: 20_000 });
      await waitFor(() => load.samples.length >= 20, 5_000, 'the loop to get going');
      await w.deploy({ app: 'legacy', source: await bundle('l2') });
      const n = load.samples.length;
      await waitFor(() => load.samples.length >= n + 20, 5_000, 'requests after the switch');
      assert.equal(failures(await load.stop()), '', 'no failed request while it moved');
      const live = w.upstreams.upstreamOf('legacy');
      assert.ok(live && live !== legacyPort);
      assert.equal(JSON.parse((await httpText(legacyPort, '/info')).body).version, 'l2');
      await w.removeApp('legacy');
      assert.ok(!rules().some((l) => l.includes('legacy')), 'rm removes the rule');
    });
  });
}
