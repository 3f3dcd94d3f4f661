/**
 * The CLI's entry point (bin/plexus runs this). Plain JavaScript so that it needs no type
 * stripping itself. For the short verbs it turns on Node's compile cache, which also keeps the
 * output of TypeScript type stripping, and only then loads the CLI: that takes
 * `plexus exec NODE -- true` from about 120 ms of start-up to about 50 ms (issue 5,
 * bench/commands.ts). The cache lives in $PLEXUS_COMPILE_CACHE (bin/plexus points it into
 * .tools/), is keyed by file contents, and is skipped silently when it cannot be written.
 * The `agent` verb runs from a bundle instead (agent-bundle.mjs).
 */
import { enableCompileCache } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheTypeStripping, verbOf } from './type-strip-cache.mjs';

// bin/plexus caps glibc's malloc arenas for this process (see there); not for what it starts.
if (process.env.PLEXUS_MALLOC_ARENA_MAX_SET === '1') {
  delete process.env.MALLOC_ARENA_MAX;
  delete process.env.PLEXUS_MALLOC_ARENA_MAX_SET;
}
if (process.env.PLEXUS_MALLOC_THRESHOLDS_SET === '1') {
  delete process.env.MALLOC_TRIM_THRESHOLD_;
  delete process.env.PLEXUS_MALLOC_THRESHOLDS_SET;
}
const cacheDir = process.env.PLEXUS_COMPILE_CACHE;
if (verbOf(process.argv.slice(2)) === 'agent') {
  // The agent runs bundled (agent-bundle.mjs says why); from the sources when it cannot be.
  const { runBundledAgent } = await import('../runtime/agent-bundle.mjs');
  if (!(await runBundledAgent(join(import.meta.dirname, '..', '..'), cacheDir))) {
    // The agent keeps only the type stripping cached: see type-strip-cache.mjs for why.
    cacheTypeStripping(join(cacheDir ?? join(tmpdir(), 'node-compile-cache'), 'plexus-ts'));
    await import('./main.ts');
  }
} else {
  try {
    enableCompileCache?.(cacheDir);
  } catch {
    // No cache: just slower.
  }
  await import('./main.ts');
}
