/**
 * Containers in telemetry against a real Docker engine (issue 18): Debian's `docker.io`
 * (installed with apt-get when missing), a dockerd of the test's own (its own socket, data root
 * and exec root; no bridge, no iptables, the vfs storage driver) so that nothing of the host's is
 * touched. Its image is imported from a tar of /bin/sleep and its libraries (no registry). A
 * running container with a health check and a created one must show with their state, health,
 * CPU and memory. Skipped, with the reason printed, where dockerd cannot run.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/logging/index.ts';
import { telemetryContainerSchema } from '../../src/mesh/telemetry-schema.ts';
import { ContainerCollector } from '../../src/telemetry/containers.ts';
import { waitFor } from '../helpers/cluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-docker-'));
const socket = join(dir, 'docker.sock');
let dockerd: ChildProcess | undefined;
let dockerdLog = '';

/** A call to the test's engine; resolves with the status and the body. */
function api(
  method: string,
  path: string,
  body?: Buffer | object,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data =
      body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const type = Buffer.isBuffer(body) ? 'application/x-tar' : 'application/json';
    const req = request(
      { socketPath: socket, method, path, headers: data ? { 'content-type': type } : {} },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Why dockerd cannot run here, after trying to install it; undefined when it answers. */
async function startDockerd(): Promise<string | undefined> {
  const has = () => {
    try {
      execFileSync('sh', ['-c', 'command -v dockerd'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (!has()) {
    if (process.getuid?.() !== 0)
      return 'dockerd is not installed and the test is not root (apt-get install docker.io)';
    try {
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'docker.io'], {
        stdio: 'ignore',
        timeout: 300_000,
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch (err) {
      return `apt-get install docker.io failed: ${(err as Error).message.split('\n')[0]}`;
    }
    if (!has()) return 'docker.io installed no dockerd';
  }
  dockerd = spawn(
    'dockerd',
    [
      `--host=unix://${socket}`,
      `--data-root=${join(dir, 'data')}`,
      `--exec-root=${join(dir, 'exec')}`,
      `--pidfile=${join(dir, 'docker.pid')}`,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--storage-driver=vfs',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (c: Buffer) => {
    dockerdLog = (dockerdLog + c).slice(-2000);
  };
  dockerd.stdout?.on('data', keep);
  dockerd.stderr?.on('data', keep);
  let exited = false;
  dockerd.once('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !exited) {
    if ((await api('GET', '/_ping').catch(() => undefined))?.status === 200) return undefined;
    await new Promise((r) => setTimeout(r, 200));
  }
  return `dockerd did not come up: ${dockerdLog.split('\n').slice(-3).join(' | ')}`;
}

/** An image of /bin/sleep and the libraries it loads, imported from a tar (no registry). */
async function importSleepImage(): Promise<void> {
  const root = join(dir, 'img');
  const libs = execFileSync('ldd', ['/bin/sleep'], { encoding: 'utf8' }).match(/\/\S+/g) ?? [];
  for (const f of ['/bin/sleep', ...libs]) {
    mkdirSync(join(root, dirname(f)), { recursive: true });
    execFileSync('cp', ['-L', f, join(root, f)]);
  }
  const tar = execFileSync('tar', ['-C', root, '-cf', '-', '.'], { maxBuffer: 64 * 1024 * 1024 });
  const r = await api('POST', '/images/create?fromSrc=-&repo=plexus-test-sleep&tag=1', tar);
  assert.equal(r.status, 200, r.body);
}

const skip = await startDockerd().catch((err: Error) => `dockerd could not start: ${err.message}`);
if (skip) console.log(`# skipped: ${skip}`);

before(async () => {
  if (skip) return;
  await importSleepImage();
  const make = async (name: string, start: boolean) => {
    const r = await api('POST', `/containers/create?name=${name}`, {
      Image: 'plexus-test-sleep:1',
      Cmd: ['/bin/sleep', '600'],
      HostConfig: { NetworkMode: 'none' },
      Healthcheck: { Test: ['CMD', '/bin/sleep', '0'], Interval: 300_000_000, StartPeriod: 0 },
    });
    assert.equal(r.status, 201, r.body);
    if (start) assert.equal((await api('POST', `/containers/${name}/start`)).status, 204);
  };
  await make('plexus-zd-running', true);
  await make('plexus-zd-created', false);
});

after(async () => {
  if (dockerd && dockerd.exitCode === null) {
    for (const name of ['plexus-zd-running', 'plexus-zd-created'])
      await api('DELETE', `/containers/${name}?force=1`).catch(() => {});
    const gone = new Promise((r) => dockerd!.once('exit', r));
    dockerd.kill('SIGTERM');
    const t = setTimeout(() => dockerd!.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(t);
  }
  // vfs layers are plain copies: removing them is enough (no mounts are left once dockerd exits).
  if (existsSync(join(dir, 'docker.pid')))
    console.log(`dockerd left ${readFileSync(join(dir, 'docker.pid'), 'utf8')}`);
  rmSync(dir, { recursive: true, force: true });
});

describe('containers from a real Docker engine', { skip }, () => {
  it('lists the running and the created container with state, health, CPU and memory', async () => {
    const c = new ContainerCollector(
      { sockets: [join(dir, 'absent.sock'), socket] },
      { logger: silentLogger() },
    );
    const found = await waitFor(
      async () => {
        const s = await c.sample();
        const r = s?.containers.find((x) => x.name === 'plexus-zd-running');
        // CPU needs a second sample; health needs the first check to have run.
        return r && r.health === 'healthy' && r.cpuPct !== null ? { s: s!, r } : undefined;
      },
      30_000,
      'the running container healthy with figures',
      500,
    );
    const running = found!;
    assert.equal(running.r.state, 'running');
    assert.equal(running.r.image, 'plexus-test-sleep:1');
    assert.match(running.r.id, /^[0-9a-f]{12}$/);
    assert.ok(running.r.memMb !== null && running.r.memMb >= 0, `memory ${running.r.memMb}`);
    const created = running.s.containers.find((x) => x.name === 'plexus-zd-created');
    assert.deepEqual(
      { state: created?.state, health: created?.health, cpu: created?.cpuPct, mem: created?.memMb },
      { state: 'created', health: 'none', cpu: null, mem: null },
    );
    assert.equal(running.s.containers[0].name, 'plexus-zd-running', 'running containers first');
    for (const x of running.s.containers) telemetryContainerSchema.parse(x);
  });
});
