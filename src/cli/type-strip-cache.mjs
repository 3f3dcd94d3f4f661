/**
 * Type stripping for the agent process, cached on disk, without Node's compile cache.
 *
 * Why the agent does not use Node's compile cache like the short CLI verbs do:
 * - its V8 code caches are refused anyway: the agent changes V8 flags before it loads the
 *   daemon (src/cli/agent.ts), and a code cache only fits the flags it was made with, so every
 *   daemon module compiled from scratch ("V8 code cache … was rejected" with
 *   NODE_DEBUG_NATIVE=COMPILE_CACHE);
 * - yet the cache holds every entry it read in memory for the life of the process, to write
 *   them back at exit: ~5 MB of an idle agent's RSS (5-agent mesh, bench/join.ts idle figure).
 * What the agent does need from it is the type-stripped source: on a miss Node strips with
 * amaro, a WebAssembly build of swc that stays loaded and costs ~17 MB of RSS (a one-line .ts
 * file: 42 → 60 MB). This loader keeps that part: stripped modules are read from `dir`, and
 * amaro is loaded only for a file that changed since it was last stripped.
 *
 * Plain JavaScript, like boot.mjs: it must run before any TypeScript is loaded.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { registerHooks, stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Global options of `plexus` that take a value (see main.ts and api-flag.ts). */
const VALUE_OPTIONS = new Set(['--data-dir', '--key', '--node', '--api']);

/** The verb of a `plexus` command line (`process.argv.slice(2)`), or undefined. */
export function verbOf(args) {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * Serves `.ts` modules of this repository type-stripped from a cache under `dir`. Returns
 * false (and changes nothing) where the Node in use cannot: then Node strips them itself.
 */
export function cacheTypeStripping(dir) {
  if (typeof registerHooks !== 'function' || typeof stripTypeScriptTypes !== 'function') return false;
  // Under --experimental-transform-types Node would transform, not strip: leave it to Node.
  if (process.features?.typescript !== 'strip') return false;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    return false;
  }
  registerHooks({
    load(url, context, nextLoad) {
      // Node refuses to strip files under node_modules; keep its error for those.
      if (
        context.format !== 'module-typescript' ||
        !url.startsWith('file:') ||
        url.includes('/node_modules/')
      )
        return nextLoad(url, context);
      let path;
      let source;
      try {
        path = fileURLToPath(url);
        source = readFileSync(path, 'utf8');
      } catch {
        return nextLoad(url, context);
      }
      // One entry per file (named by its path), valid while its first line is the source's hash.
      const entry = join(
        dir,
        createHash('sha256').update(`${process.version}\0${path}`).digest('hex').slice(0, 32),
      );
      const tag = createHash('sha256').update(source).digest('base64');
      try {
        const text = readFileSync(entry, 'utf8');
        const nl = text.indexOf('\n');
        if (text.slice(0, nl) === tag)
          return { format: 'module', source: text.slice(nl + 1), shortCircuit: true };
      } catch {
        // not cached yet
      }
      // Same stripping (and the same errors for unsupported syntax) as Node's own loader.
      const js = stripTypeScriptTypes(source, { mode: 'strip' });
      try {
        const tmp = `${entry}.${process.pid}.tmp`;
        writeFileSync(tmp, `${tag}\n${js}`, { mode: 0o600 });
        renameSync(tmp, entry);
      } catch {
        // A read-only cache only costs the next start the stripping again.
      }
      return { format: 'module', source: js, shortCircuit: true };
    },
  });
  return true;
}
