/**
 * The other half of bin/plexus's glibc malloc settings. glibc reads MALLOC_ARENA_MAX and
 * MALLOC_TRIM_THRESHOLD_ only as a process starts, so bin/plexus sets them for the agent's own
 * process (its comments give the why and the bench that measures each). They are meant for the
 * agent alone: this takes them out of the environment again, before anything is spawned, so
 * that the apps the agent starts keep glibc's defaults. A variable the user had set is kept.
 *
 * Plain JavaScript: src/cli/boot.mjs calls it first thing, for every verb.
 */

/** Removes the malloc variables bin/plexus added (it marks them with PLEXUS_*_SET=1). */
export function forgetAgentMallocEnv() {
  if (process.env.PLEXUS_MALLOC_ARENA_MAX_SET === '1') {
    delete process.env.MALLOC_ARENA_MAX;
    delete process.env.PLEXUS_MALLOC_ARENA_MAX_SET;
  }
  if (process.env.PLEXUS_MALLOC_THRESHOLDS_SET === '1') {
    delete process.env.MALLOC_TRIM_THRESHOLD_;
    delete process.env.PLEXUS_MALLOC_THRESHOLDS_SET;
  }
}
