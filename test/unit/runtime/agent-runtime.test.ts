/**
 * The agent's type-stripping cache (no amaro once warm, same output and errors as Node's own
 * stripping) and the verb detection boot.mjs relies on.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { verbOf } from '../../../src/cli/type-strip-cache.mjs';
import { rewriteDependency } from '../../../src/runtime/agent-bundle.mjs';
import { freePort, PLEXUS, waitFor } from '../../helpers/cluster.ts';

const CLI = resolve(import.meta.dirname, '..', '..', '..', 'src', 'cli');
const tmp = mkdtempSync(join(tmpdir(), 'plexus-agent-runtime-'));
// Like this repository: .ts files are ES modules.
writeFileSync(join(tmp, 'package.json'), '{"type":"module"}\n');
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs an ES module (source text) in a fresh Node with compile caches off; parses its last line. */
function runModule(source: string): { status: number | null; out: unknown; stderr: string } {
  const file = join(tmp, `main-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, source);
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', file], {
    encoding: 'utf8',
    env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1', NODE_COMPILE_CACHE: '' },
    timeout: 30_000,
  });
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return { status: r.status, out: last ? JSON.parse(last) : undefined, stderr: r.stderr };
}

describe('verbOf', () => {
  it('finds the verb after global options and their values', () => {
    assert.equal(verbOf(['agent', '--quiet']), 'agent');
    assert.equal(verbOf(['--data-dir', '/srv/p', 'agent']), 'agent');
    assert.equal(verbOf(['--data-dir=/srv/p', 'agent']), 'agent');
    assert.equal(verbOf(['--api', 'http://127.0.0.1:7071', '--key', 'k', 'status']), 'status');
    assert.equal(verbOf(['--node', 'agent', 'apps']), 'apps');
    assert.equal(verbOf(['--json']), undefined);
  });
});

describe('cacheTypeStripping', () => {
  const cache = join(tmp, 'ts-cache');
  const mod = join(tmp, 'answer.ts');
  const loader = (target: string) => `
    import { cacheTypeStripping } from ${JSON.stringify(pathToFileURL(join(CLI, 'type-strip-cache.mjs')).href)};
    const on = cacheTypeStripping(${JSON.stringify(cache)});
    let value, code;
    try { value = (await import(${JSON.stringify(pathToFileURL(target).href)})).answer(); } catch (err) { code = err.code; }
    const amaro = process.moduleLoadList.some((m) => m.includes('amaro'));
    console.log(JSON.stringify({ on, value, code, amaro }));
  `;

  it('strips on the first load and serves the cache without loading amaro after', () => {
    writeFileSync(mod, 'export function answer(): number {\n  const n: number = 41;\n  return n + 1;\n}\n');
    const first = runModule(loader(mod));
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(first.out, { on: true, value: 42, amaro: true });
    assert.equal(readdirSync(cache).length, 1);
    const second = runModule(loader(mod));
    assert.deepEqual(second.out, { on: true, value: 42, amaro: false });
  });

  it('strips again when the file changes', () => {
    writeFileSync(mod, 'export function answer(): string {\n  return "changed";\n}\n');
    assert.deepEqual(runModule(loader(mod)).out, { on: true, value: 'changed', amaro: true });
    assert.deepEqual(runModule(loader(mod)).out, { on: true, value: 'changed', amaro: false });
    assert.equal(readdirSync(cache).length, 1, 'one entry per file');
  });

  it('refuses what Node refuses, with the same error code', () => {
    const bad = join(tmp, 'enum.ts');
    writeFileSync(bad, 'enum E { A }\nexport function answer() { return E.A; }\n');
    const r = runModule(loader(bad));
    assert.equal((r.out as { code: string }).code, 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX');
    const plain = runModule(
      `try { await import(${JSON.stringify(pathToFileURL(bad).href)}); } catch (err) { console.log(JSON.stringify({ code: err.code })); }`,
    );
    assert.equal((plain.out as { code: string }).code, 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX');
  });
});

describe('agent bundle', () => {
  const root = resolve(CLI, '..', '..');
  // Inside the repository, as the real one is: its external packages resolve from node_modules.
  const dir = mkdtempSync(join(root, '.tools', 'test-bundle-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const out = join(dir, 'agent-test.mjs');
  before(() => {
    const b = spawnSync(process.execPath, [join(CLI, '..', 'runtime', 'agent-bundle.mjs'), root, out], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(b.status, 0, b.stderr);
  });

  it('builds an ASCII-only bundle that runs the CLI', () => {
    const bytes = readFileSync(out);
    // One non-ASCII byte would make V8 keep the whole source as UTF-16 (twice the memory).
    assert.equal(
      bytes.findIndex((c) => c > 0x7f),
      -1,
    );
    const r = spawnSync(process.execPath, [out, 'version'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^plexus \d+\.\d+\.\d+ /);
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
    // node:http's WebSocket getters load undici when it is imported as an ES module
    // (src/core/http-modules.ts); prom-client's Pushgateway loads TLS unless the bundle defers it.
    assert.match(stderr, /LOADED \[\]/);
  });
});

describe("rewriteDependency (the bundle's changes to dependencies)", () => {
  const root = resolve(CLI, '..', '..');
  const jsFiles = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile() && e.name.endsWith('.js'))
      .map((e) => join(e.parentPath, e.name));

  it('leaves no localeCompare in the peer store and peer records', () => {
    let changed = 0;
    for (const pkg of ['@libp2p/peer-store', '@libp2p/peer-record']) {
      for (const f of jsFiles(join(root, 'node_modules', pkg, 'dist'))) {
        const src = readFileSync(f, 'utf8');
        const out = rewriteDependency(f, src);
        assert.doesNotMatch(out, /\.localeCompare\(/, f);
        if (out !== src) changed++;
      }
    }
    assert.ok(changed >= 2, `only ${changed} files rewritten`);
  });

  it("defers node:https in prom-client's Pushgateway", () => {
    const f = join(root, 'node_modules', 'prom-client', 'lib', 'pushgateway.js');
    const out = rewriteDependency(f, readFileSync(f, 'utf8'));
    assert.doesNotMatch(out, /require\('https'\)/);
    assert.match(out, /getBuiltinModule\('node:https'\)/);
  });

  it('sorts in code-unit order, and refuses a form it does not know', async () => {
    const f = '/x/node_modules/@libp2p/peer-store/dist/src/sort.js';
    const out = rewriteDependency(
      f,
      'export const sort = (xs) => xs.sort((a, b) => a.toString().localeCompare(b.toString()));',
    );
    const { sort } = await import(`data:text/javascript,${encodeURIComponent(out)}`);
    assert.deepEqual(sort(['b', 'a', 'B', '/ip4/1', '/ip4/10', '/ip4/2']), [
      '/ip4/1',
      '/ip4/10',
      '/ip4/2',
      'B',
      'a',
      'b',
    ]);
    assert.throws(
      () => rewriteDependency(f, 'xs.sort((a, b) => (a + "").localeCompare(b))'),
      /does not know/,
    );
  });
});
