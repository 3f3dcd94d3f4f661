/**
 * The agent bundle (src/runtime/bundle.mjs, `scripts/build`): a release build writes the bundle
 * and its BUILD stamp, the bundle is ASCII and runs the CLI, and an agent started from it works
 * and loads neither undici nor TLS.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, PLEXUS, ROOT, waitFor } from '../../helpers/cluster.ts';

const BUILD = join(ROOT, 'scripts', 'build');

describe('scripts/build --out', () => {
  // Inside the repository, as a release's dist/ is: its external packages resolve from node_modules.
  const dir = mkdtempSync(join(ROOT, '.tools', 'test-bundle-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'agent.mjs');

  before(() => {
    const b = spawnSync(BUILD, ['--out', dir], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(b.status, 0, b.stderr);
  });

  it('writes a BUILD stamp naming the bundle it vouches for', () => {
    const stamp = JSON.parse(readFileSync(join(dir, 'BUILD'), 'utf8'));
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    assert.equal(stamp.version, pkg.version);
    assert.equal(stamp.bundle, 'agent.mjs');
    assert.equal(stamp.sha256, createHash('sha256').update(readFileSync(out)).digest('hex'));
  });

  it('builds an ASCII-only bundle of the agent verb alone', () => {
    // One non-ASCII byte would make V8 keep the whole source as UTF-16 (twice the memory).
    assert.equal(
      readFileSync(out).findIndex((c) => c > 0x7f),
      -1,
    );
    const v = spawnSync(process.execPath, [out, '--version'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /^plexus \d+\.\d+\.\d+ /);
    const help = spawnSync(process.execPath, [out, 'agent', '--help'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /run the agent in the foreground/);
    // The other verbs live in the CLI's sources only (src/cli/agent-main.ts says why).
    const other = spawnSync(process.execPath, [out, 'peers'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(other.status, 2);
  });

  it('runs an agent that loads neither undici nor TLS', async () => {
    const data = join(dir, 'node');
    const init = spawnSync(
      PLEXUS,
      [
        'init',
        '--name',
        'solo',
        '--data-dir',
        data,
        '--listen',
        `/ip4/127.0.0.1/tcp/${await freePort()}`,
        '--api',
        `127.0.0.1:${await freePort()}`,
        '--socks',
        `127.0.0.1:${await freePort()}`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(init.status, 0, init.stderr);
    // Reports, as the agent exits, which of Node's own modules it has loaded.
    const probe = `data:text/javascript,process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(process.moduleLoadList.filter((m) => /undici|NativeModule (tls|https)$/.test(m))) + '\\n'))`;
    const agent = spawn(process.execPath, ['--import', probe, out, 'agent', '--data-dir', data], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    agent.stdout.on('data', (d) => {
      stdout += d;
    });
    agent.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((r) => agent.once('exit', r));
    // Its log line, not its control socket: the socket listens before the agent has set up its
    // SIGTERM handler, and a signal in between would kill it outright.
    await waitFor(
      () => {
        if (agent.exitCode !== null) throw new Error(`exited ${agent.exitCode}: ${stderr}`);
        return stdout.includes('"msg":"agent started"');
      },
      20_000,
      'the bundled agent to start',
      50,
    );
    agent.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    // node:http's WebSocket getters load undici (~3.5 MB) when it is imported as an ES module
    // (src/core/http-modules.ts); prom-client's Pushgateway loads TLS unless patched (patches/).
    assert.match(stderr, /LOADED \[\]/);
  });

  it('refuses a folder outside the installation', () => {
    const outside = mkdtempSync(join(tmpdir(), 'plexus-bundle-'));
    try {
      const r = spawnSync(BUILD, ['--out', outside], { encoding: 'utf8', timeout: 60_000 });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /must be a folder inside/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
