/**
 * The layout's rules (docs/architecture.md), checked on the sources so that they stay true:
 * small files, no import cycles, arrows only from a higher subsystem to a lower one, every
 * domain error a named class in its subsystem's errors.ts, and zod through src/core/zod.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');
const MAX_LINES = 400;

/**
 * Low to high. A file may import from its own subsystem and from any lower level; never from a
 * higher level, and never from another subsystem of its own level (daemon.ts wires peers).
 */
const LEVELS: Record<string, number> = {
  core: 0,
  crypto: 1,
  config: 1,
  store: 1,
  logging: 1,
  runtime: 1,
  mesh: 2,
  tunnels: 3,
  workloads: 3,
  telemetry: 3,
  commands: 3,
  shell: 3,
  install: 3,
  // Above workloads: runs its daemons with the workloads' process supervisor (docs/edge.md).
  host: 3.5,
  api: 4,
  daemon: 5,
  cli: 6,
};

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|mts|mjs)$/.test(name) && !name.endsWith('.d.mts')) out.push(path);
  }
  return out;
}

/** The subsystem of a file under src/: its first folder, or the file's own name at the top. */
function subsystemOf(path: string): string {
  const [first, second] = relative(SRC, path).split('/');
  return second === undefined ? first.replace(/\.\w+$/, '') : first;
}

/** Relative imports of a file, type-only ones included, resolved to absolute paths. */
function importsOf(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"](\.[^'"]+)['"]/gms),
    ...text.matchAll(/^\s*import\s+['"](\.[^'"]+)['"]/gm),
    ...text.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]);
  return specs.map((s) => resolve(dirname(path), s));
}

const files = sourceFiles(SRC);
const rel = (p: string) => relative(ROOT, p);

describe('architecture', () => {
  it(`no file in src/ is over ${MAX_LINES} lines`, () => {
    const long = files
      .map((f) => ({ f: rel(f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter((x) => x.lines > MAX_LINES)
      .map((x) => `${x.f} (${x.lines})`);
    assert.deepEqual(long, []);
  });

  it('every relative import resolves to a file', () => {
    const missing = files.flatMap((f) =>
      importsOf(f)
        .filter((t) => !existsSync(t))
        .map((t) => `${rel(f)} -> ${rel(t)}`),
    );
    assert.deepEqual(missing, []);
  });

  it('no import cycles, type-only imports included', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => t.startsWith(SRC))]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'open');
      stack.push(f);
      for (const t of graph.get(f) ?? []) {
        if (state.get(t) === 'open') cycles.push([...stack.slice(stack.indexOf(t)), t].map(rel).join(' -> '));
        else if (!state.has(t)) visit(t);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    assert.deepEqual(cycles, []);
  });

  it('arrows only point down: no subsystem imports a higher one or a peer', () => {
    const bad: string[] = [];
    for (const f of files) {
      const from = subsystemOf(f);
      assert.ok(from in LEVELS, `${rel(f)}: subsystem '${from}' has no level in this test`);
      for (const t of importsOf(f)) {
        if (!t.startsWith(SRC)) continue;
        const to = subsystemOf(t);
        if (to === from) continue;
        if (!(LEVELS[to] < LEVELS[from])) bad.push(`${rel(f)} -> ${rel(t)}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('domain errors are named classes in errors.ts, never inline PlexusErrors', () => {
    const inline = files
      .filter((f) => !f.endsWith('/errors.ts'))
      .filter((f) => /new PlexusError\(/.test(readFileSync(f, 'utf8')))
      .map(rel);
    assert.deepEqual(inline, []);
  });

  it('zod is imported by name through src/core/zod.ts (its whole namespace would fill the bundle)', () => {
    const direct = files
      .filter((f) => rel(f) !== 'src/core/zod.ts')
      .filter((f) => /from\s+['"]zod(\/[^'"]*)?['"]/.test(readFileSync(f, 'utf8')))
      .map(rel);
    assert.deepEqual(direct, []);
  });

  it('every subsystem that throws domain errors has its own errors.ts', () => {
    const missing = Object.keys(LEVELS)
      .filter((s) => existsSync(join(SRC, s)) && statSync(join(SRC, s)).isDirectory())
      .filter((s) =>
        sourceFiles(join(SRC, s)).some((f) =>
          /\bPlexusError\b|extends \w+Error\b/.test(readFileSync(f, 'utf8')),
        ),
      )
      .filter((s) => !existsSync(join(SRC, s, 'errors.ts')))
      .map((s) => `src/${s}/errors.ts`);
    assert.deepEqual(missing, []);
  });
});
