/**
 * The CLI's entry point (bin/plexus runs this). Plain JavaScript so that it needs no type
 * stripping itself. For the short verbs it turns on Node's compile cache, which also keeps the
 * output of TypeScript type stripping, and only then loads the CLI: that takes
 * `plexus exec NODE -- true` from about 120 ms of start-up to about 50 ms (issue 5,
 * bench/commands.ts). The cache lives in $PLEXUS_COMPILE_CACHE (bin/plexus points it into
 * .tools/), is keyed by file contents, and is skipped silently when it cannot be written.
 *
 * The `agent` verb runs from a bundle instead (src/runtime/launcher.mjs), and without the
 * compile cache when it falls back to the sources: the agent changes V8 flags before it loads
 * the daemon (src/runtime/heap.ts), so V8 refuses every cached code entry, while the cache would
 * still hold them all in memory for the life of the process (~5 MB of an idle agent's RSS).
 */
import { enableCompileCache } from 'node:module';
import { join } from 'node:path';
import { forgetAgentMallocEnv } from '../runtime/malloc-env.mjs';
import { verbOf } from './verb-of.mjs';

forgetAgentMallocEnv();
const cacheDir = process.env.PLEXUS_COMPILE_CACHE;
if (verbOf(process.argv.slice(2)) === 'agent') {
  const { runBundledAgent } = await import('../runtime/launcher.mjs');
  if (!(await runBundledAgent(join(import.meta.dirname, '..', '..'), cacheDir))) await import('./main.ts');
} else {
  try {
    enableCompileCache?.(cacheDir);
  } catch {
    // No cache: just slower.
  }
  await import('./main.ts');
}
