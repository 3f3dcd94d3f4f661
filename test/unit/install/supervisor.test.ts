/**
 * packaging/supervisor/plexus-supervise and its control (src/install/supervisor.ts), with a fake
 * agent: a restart on request, a failed exit restarted and counted, one supervisor per host, a
 * clean stop, and a pid file that names some other process is never signalled.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { supervisorControl, supervisorPid } from '../../../src/install/supervisor.ts';

const SCRIPT = resolve(import.meta.dirname, '..', '..', '..', 'packaging', 'supervisor', 'plexus-supervise');
const dir = mkdtempSync(join(tmpdir(), 'plexus-supervise-'));
const prefix = join(dir, 'opt');
const run = join(dir, 'run');
const env = { ...process.env, PLEXUS_PREFIX: prefix, PLEXUS_DATA: join(dir, 'data'), PLEXUS_RUN: run };
mkdirSync(join(prefix, 'releases', '1', 'bin'), { recursive: true });
// The fake agent: runs until signalled, like the real one.
writeFileSync(join(prefix, 'releases', '1', 'bin', 'plexus'), '#!/bin/sh\nexec sleep 600\n');
chmodSync(join(prefix, 'releases', '1', 'bin', 'plexus'), 0o755);
symlinkSync(join('releases', '1'), join(prefix, 'current'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  const agent = agentPid();
  if (agent) spawnSync('kill', ['-9', String(agent)]);
  rmSync(dir, { recursive: true, force: true });
});

const agentPid = () =>
  existsSync(join(run, 'agent.pid')) ? Number(readFileSync(join(run, 'agent.pid'), 'utf8')) : 0;
async function until(what: string, ok: () => boolean, ms = 10_000) {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
    if (ok()) return;
  assert.fail(`timed out waiting for ${what}`);
}

describe('plexus-supervise', () => {
  const control = supervisorControl(run);
  let sup: ChildProcess;

  it('runs the agent, and one supervisor only', async () => {
    sup = spawn(SCRIPT, [], { env, stdio: 'ignore' });
    children.push(sup);
    await until('the agent', () => agentPid() > 0);
    assert.equal(supervisorPid(run), sup.pid);
    const second = spawnSync(SCRIPT, [], { env, encoding: 'utf8', timeout: 10_000 });
    assert.equal(second.status, 1);
    assert.match(second.stderr, /already running/);
    assert.equal(await control.restarts(), 0);
  });

  it('restarts the agent on request (SIGHUP), without counting it as a failure', async () => {
    const before = agentPid();
    await control.restart();
    assert.notEqual(agentPid(), before);
    assert.equal(await control.restarts(), 0);
  });

  it('restarts an agent that died, after 2 s, and counts it', async () => {
    const before = agentPid();
    process.kill(before, 'SIGKILL');
    await until('the restart', () => agentPid() !== before);
    assert.equal(await control.restarts(), 1);
    const log = readFileSync(join(dir, 'data', 'logs', 'supervisor.log'), 'utf8');
    assert.match(log, /exited with status 137; restart 1 in 2 s/);
  });

  it('never signals a process a stale pid file names', async () => {
    const other = spawn('sleep', ['30']);
    children.push(other);
    const fake = join(dir, 'fake-run');
    mkdirSync(fake);
    writeFileSync(join(fake, 'supervisor.pid'), String(other.pid));
    await assert.rejects(supervisorControl(fake).restart(), { code: 'SUPERVISOR_UNAVAILABLE' });
    assert.equal(other.exitCode, null);
    assert.equal(other.signalCode, null, 'the unrelated process was left alone');
  });

  it('stops the agent and itself on SIGTERM', async () => {
    const agent = agentPid();
    const gone = new Promise((r) => sup.once('exit', r));
    sup.kill('SIGTERM');
    await gone;
    assert.equal(supervisorPid(run), undefined);
    assert.ok(!existsSync(join(run, 'agent.pid')));
    await until(
      'the agent to go',
      () => !existsSync(`/proc/${agent}`) || readFileSync(`/proc/${agent}/stat`, 'utf8').includes(') Z'),
    );
  });
});
