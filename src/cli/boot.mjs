/**
 * The CLI's entry point (bin/plexus runs this). Plain JavaScript so that it needs no type
 * stripping itself: it turns on Node's compile cache, which also keeps the output of TypeScript
 * type stripping, and only then loads the CLI. That takes `plexus exec NODE -- true` from about
 * 120 ms of start-up to about 50 ms (issue 5, bench/commands.ts). The cache lives in the OS temp
 * dir, is keyed by file contents, and is skipped silently when it cannot be written.
 */
import { enableCompileCache } from 'node:module';

try {
  enableCompileCache?.();
} catch {
  // No cache: just slower.
}
await import('./main.ts');
