/**
 * `scripts/demo` is the first thing a newcomer runs: `--once` must work end to end, and Ctrl-C on
 * the long-running form must stop everything it started, the apps included (an agent that stops
 * leaves its apps running on purpose, so the demo has to stop them itself).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, waitFor } from '../helpers/cluster.ts';

/** Pids of the processes whose working directory is inside `dir`. */
function processesIn(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(`${dir}/`)) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

describe('scripts/demo', () => {
  it('starts a three-node mesh, deploys the sample app and reaches it over the mesh', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plexus-demo-'));
    chmodSync(dir, 0o711); // the demo's apps run as users of their own, who pass through
    try {
      const { stdout } = await promisify(execFile)(join(ROOT, 'scripts', 'demo'), ['--once'], {
        env: { ...process.env, PLEXUS_DEMO_DIR: join(dir, 'demo') },
        timeout: 180_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      assert.match(stdout, /online links: 6\/6/);
      assert.match(stdout, /3 sent, 3 received, 0 lost/);
      // The sample app on n2, reached from n3 through a forward and through SOCKS5.
      assert.equal(stdout.match(/hello from n2 \(pid \d+/g)?.length, 2);
      assert.match(stdout, /hello\s+running/);
      assert.deepEqual(processesIn(join(dir, 'demo')), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Ctrl-C stops the agents and the apps they started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plexus-demo-'));
    chmodSync(dir, 0o711); // the demo's apps run as users of their own, who pass through
    const demoDir = join(dir, 'demo');
    // Its own process group, as a shell gives a foreground job: Ctrl-C is SIGINT to that group.
    const demo = spawn(join(ROOT, 'scripts', 'demo'), [], {
      env: { ...process.env, PLEXUS_DEMO_DIR: demoDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    demo.stdout.on('data', (d) => {
      out += d;
    });
    demo.stderr.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes('the mesh is running'), 180_000, 'the demo to be up');
      const running = processesIn(demoDir);
      assert.ok(running.length >= 1, 'the sample app runs inside the demo dir');
      process.kill(-demo.pid!, 'SIGINT');
      await Promise.race([
        exited,
        new Promise((_, reject) => setTimeout(() => reject(new Error(`demo did not stop: ${out}`)), 60_000)),
      ]);
      assert.deepEqual(processesIn(demoDir), [], 'nothing the demo started still runs');
      for (const pid of running) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
      assert.doesNotMatch(out, /leftover process/, 'the apps were stopped through their agents');
    } finally {
      try {
        process.kill(-demo.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      for (const pid of processesIn(demoDir)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
