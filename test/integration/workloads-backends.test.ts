/**
 * The shared contract of the workload backends, run against each with real processes: the
 * process backend everywhere, systemd only where it runs (skipped with the reason otherwise).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseStampedLine } from '../../src/core/log-stamp.ts';
import { silentLogger } from '../../src/logging/index.ts';
import { ensureAppUser } from '../../src/workloads/app-users.ts';
import type { Backend, LaunchSpec, RunChange } from '../../src/workloads/backend.ts';
import { checkPortFree } from '../../src/workloads/preflight.ts';
import { groupMembers, isSameProcess } from '../../src/workloads/proc.ts';
import { createProcessBackend, type ProcessBackendInit } from '../../src/workloads/process-backend.ts';
import { createSystemdBackend, systemdUnavailableReason } from '../../src/workloads/systemd-backend.ts';
import { freePort, waitFor } from '../helpers/cluster.ts';
import { httpText } from '../helpers/http.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const FIXTURE = resolve(import.meta.dirname, '..', 'fixtures', 'workloads', 'app');
const root = mkdtempSync(join(tmpdir(), 'plexus-backends-'));
const started = new Set<number>();
after(() => {
  for (const pid of started) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
  }
  killProcessesUnder(FIXTURE); // apps run in the fixture folder itself
  rmSync(root, { recursive: true, force: true });
});

const fetchText = async (port: number, path: string) => (await httpText(port, path)).body;

async function spec(app: string, over: Partial<LaunchSpec> = {}): Promise<LaunchSpec & { port: number }> {
  const port = await freePort();
  return {
    app,
    release: 'r1',
    cwd: FIXTURE,
    cmd: `${process.execPath} server.cjs`,
    env: { PORT: String(port), PATH: process.env.PATH ?? '/usr/bin:/bin' },
    restart: 'always',
    logFile: join(root, `${app}.log`),
    appDir: root,
    port,
    ...over,
  };
}

function track(b: Backend) {
  const seen: { app: string; why: RunChange; pid: number | null; detail?: string }[] = [];
  b.on('change', (app, s, why, detail) => {
    seen.push({ app, why, pid: s.pid, detail });
    if (s.pid) started.add(s.pid);
  });
  return seen;
}

/** A free TCP port below 1024 on 127.0.0.1, or undefined. */
async function freeLowPort(): Promise<number | undefined> {
  for (let port = 990; port > 900; port--) {
    try {
      await checkPortFree(port);
      return port;
    } catch {
      // taken
    }
  }
  return undefined;
}

const FAST: ProcessBackendInit = { backoffMinMs: 20, crashloopLimit: 4, stopGraceMs: 400, adoptedPollMs: 50 };

/** The contract, parameterised by how to make a backend. */
function contract(name: string, make: () => Backend, skip?: string) {
  describe(`backend contract: ${name}`, { skip }, () => {
    it('runs an app that accepts TCP, with its output in the log', async () => {
      const b = make();
      const s = await spec(`${name}-run`);
      const launched = Date.now();
      const state = await b.launch(s);
      assert.equal(state.status, 'running');
      assert.ok(state.pid && state.pid > 0);
      const info = JSON.parse(await waitFor(() => fetchText(s.port, '/info'), 10_000, 'app to answer'));
      assert.equal(info.pid, state.pid);
      await waitFor(
        async () => (await b.tail(s.app, s.logFile, 10)).some((l) => l.includes('listening')),
        5_000,
        'log line',
      );
      // Each line carries the time it was captured (issue 15: `logs --since` for apps).
      const listening = (await b.tail(s.app, s.logFile, 10))
        .map(parseStampedLine)
        .find((l) => l.text.includes('listening'));
      assert.ok(
        listening?.time && listening.time >= launched - 1_000 && listening.time <= Date.now(),
        String(listening?.time),
      );
      await b.halt(s.app);
      await b.close();
    });

    it('restarts an app that crashes, with a new pid and a restart count', async () => {
      const b = make();
      const seen = track(b);
      const s = await spec(`${name}-crash`);
      const first = await b.launch(s);
      await waitFor(() => fetchText(s.port, '/health'), 10_000, 'app up');
      await fetchText(s.port, '/crash').catch(() => '');
      const info = JSON.parse(
        await waitFor(
          async () => {
            const t = await fetchText(s.port, '/info');
            return JSON.parse(t).pid !== first.pid ? t : '';
          },
          10_000,
          'a new process',
        ),
      );
      assert.notEqual(info.pid, first.pid);
      assert.equal(b.state(s.app)?.restarts, 1);
      assert.equal(b.state(s.app)?.status, 'running');
      assert.ok(seen.some((e) => e.why === 'crash'));
      await b.halt(s.app);
      await b.close();
    });

    it('stops with SIGTERM, and SIGKILLs a process group that ignores it', async () => {
      const b = make();
      const s = await spec(`${name}-stubborn`, {
        cmd: `sh -c 'trap "" TERM; while :; do sleep 0.05; done'`,
      });
      const state = await b.launch(s);
      await new Promise((r) => setTimeout(r, 200));
      const t0 = Date.now();
      await b.halt(s.app, 400);
      assert.equal(b.state(s.app)?.status, 'stopped');
      assert.ok(!isSameProcess(state.pid!, state.pidStart), 'process is gone');
      assert.deepEqual(groupMembers(state.pid!), [], 'and so is every process of its group');
      assert.ok(Date.now() - t0 >= 350, 'waited for the grace period first');
      await b.close();
    });

    it("runs the app as the user it is given, without the agent's groups or capabilities", async (t) => {
      if (process.getuid?.() !== 0) return t.skip('needs root to switch users');
      const b = make();
      const user = await ensureAppUser('contract');
      const s = await spec(`${name}-user`, { user });
      const state = await b.launch(s);
      await waitFor(() => fetchText(s.port, '/health'), 10_000, 'app up');
      const status = readFileSync(`/proc/${state.pid}/status`, 'utf8');
      const field = (f: string) => new RegExp(`^${f}:[ \\t]*(.*)$`, 'm').exec(status)?.[1].trim();
      assert.equal(field('Uid')?.split(/\s+/)[0], String(user.uid));
      assert.equal(field('Gid')?.split(/\s+/)[0], String(user.gid));
      // No groups of the agent's; systemd gives a User= its own group (initgroups), no more.
      assert.ok(['', String(user.gid)].includes(field('Groups') ?? ''), `groups: ${field('Groups')}`);
      assert.equal(field('CapEff'), '0000000000000000');
      await b.halt(s.app);
      await b.close();
    });

    it('keeps a capability an admin gave the app (a port below 1024), and nothing else', async (t) => {
      if (process.getuid?.() !== 0) return t.skip('needs root to switch users');
      const low = await freeLowPort();
      if (!low) return t.skip('no free port below 1024 on 127.0.0.1');
      const b = make();
      const user = await ensureAppUser('contract');
      const s = await spec(`${name}-cap`, { user, capabilities: ['NET_BIND_SERVICE'] });
      s.env.PORT = String(low);
      const state = await b.launch(s);
      await waitFor(() => fetchText(low, '/health'), 10_000, 'app on a low port');
      const status = readFileSync(`/proc/${state.pid}/status`, 'utf8');
      assert.match(status, /^CapEff:\s+0000000000000400$/m, 'CAP_NET_BIND_SERVICE only');
      assert.match(status, /^CapBnd:\s+0000000000000400$/m, 'and nothing more to gain');
      assert.match(status, new RegExp(`^Uid:\\s+${user.uid}\\s`, 'm'));
      await b.halt(s.app);
      // Without it, the same app cannot take the port.
      const plain = await spec(`${name}-nocap`, { user, restart: 'never' });
      plain.env.PORT = String(low);
      await b.launch(plain);
      await waitFor(() => b.state(plain.app)?.status !== 'running', 10_000, 'the app to fail');
      assert.ok((await b.tail(plain.app, plain.logFile, 20)).some((l) => l.includes('EACCES')));
      await b.close();
    });

    it('gives up on a crash loop and reports failed', async () => {
      const b = make();
      const seen = track(b);
      const s = await spec(`${name}-loop`, { env: { CRASH_AT_START: '1', PATH: process.env.PATH ?? '' } });
      await b.launch(s);
      await waitFor(() => b.state(s.app)?.status === 'failed', 15_000, 'status failed');
      assert.ok(seen.some((e) => e.why === 'failed'));
      if (name === 'process') {
        // Exponential backoff: each restart waits twice as long as the one before.
        const delays = seen
          .filter((e) => e.why === 'crash')
          .map((e) => Number(/restarting in (\d+) ms/.exec(e.detail ?? '')?.[1]));
        assert.deepEqual(delays, [20, 40, 80]);
        assert.ok(seen.some((e) => e.why === 'restart'));
      }
      assert.ok((b.state(s.app)?.restarts ?? 0) >= 2);
      await b.close();
    });

    it('honours on-failure and never', async () => {
      const b = make();
      const clean = await spec(`${name}-clean`, { cmd: 'true', restart: 'on-failure' });
      await b.launch(clean);
      await waitFor(() => b.state(clean.app)?.status === 'stopped', 5_000, 'clean exit stays stopped');
      const never = await spec(`${name}-never`, { cmd: 'false', restart: 'never' });
      await b.launch(never);
      await waitFor(() => b.state(never.app)?.status === 'failed', 5_000, 'failed exit is failed');
      assert.equal(b.state(never.app)?.restarts, 0);
      await b.close();
    });

    it('a new supervisor re-adopts a live app (no duplicate) and restarts one that vanished', async () => {
      const a = make();
      const s = await spec(`${name}-adopt`);
      const st = await a.launch(s);
      await waitFor(() => fetchText(s.port, '/health'), 10_000, 'app up');
      await a.close(); // the agent goes away; the app must not
      const b = make();
      const seen = track(b);
      const how = await b.adopt(s.app, {
        spec: s,
        pid: st.pid,
        pidStart: st.pidStart,
        startedAt: st.startedAt,
        restarts: 0,
        wanted: true,
      });
      assert.equal(how, 'adopt');
      assert.equal(JSON.parse(await fetchText(s.port, '/info')).pid, st.pid, 'same process, no duplicate');
      // It dies while adopted: noticed by polling and restarted.
      process.kill(st.pid!, 'SIGKILL');
      await waitFor(
        async () => JSON.parse(await fetchText(s.port, '/info')).pid !== st.pid,
        10_000,
        'restart after adoption',
      );
      assert.ok(seen.some((e) => e.why === 'crash'));
      await b.halt(s.app);
      // A pid that is gone, or reused by another process (start time differs), is not adopted.
      const c = make();
      const how2 = await c.adopt(s.app, {
        spec: s,
        pid: process.pid,
        pidStart: '1',
        startedAt: null,
        restarts: 0,
        wanted: true,
      });
      assert.equal(how2, 'restart');
      await waitFor(() => fetchText(s.port, '/health'), 10_000, 'restarted app up');
      await c.halt(s.app);
      await Promise.all([b.close(), c.close()]);
    });
  });
}

/** A backend as the manager uses it: built, then started. */
function startedBackend(b: Backend): Backend {
  b.start();
  return b;
}

contract('process', () => startedBackend(createProcessBackend(FAST, { logger: silentLogger() })));
const why = systemdUnavailableReason();
if (why) console.log(`# systemd backend contract skipped: ${why}`);
contract('systemd', () => startedBackend(createSystemdBackend({}, { logger: silentLogger() })), why);
