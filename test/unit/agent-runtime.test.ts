/**
 * The agent's type-stripping cache (no amaro once warm, same output and errors as Node's own
 * stripping) and the verb detection boot.mjs relies on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { verbOf } from '../../src/cli/type-strip-cache.mjs';

const CLI = resolve(import.meta.dirname, '..', '..', 'src', 'cli');
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

  it('builds an ASCII-only bundle that runs the CLI', () => {
    const out = join(dir, 'agent-test.mjs');
    const b = spawnSync(process.execPath, [join(CLI, 'agent-bundle.mjs'), root, out], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(b.status, 0, b.stderr);
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
});
