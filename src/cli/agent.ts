/** `plexus agent`: run the daemon in the foreground. */
import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import { dataDirOf } from './context.ts';

/**
 * V8 settings for the long-running agent, set before the daemon loads:
 * - `--external-memory-accounted-in-global-limit`: a tunnel moves hundreds of MB/s through
 *   Buffers, which are external memory; by default V8 answers that growth with a full
 *   mark-compact of the whole heap every ~30 ms, which cost the agent more CPU than the
 *   bytes themselves (bench/tunnel.ts: 300 → 500 MB/s, CPU per GB halved). Counted in the
 *   global limit instead, they are freed by the cheap young-generation scavenges.
 * - `--semi-space-growth-factor=1`: the young generation stays at its initial 1 MB semi-space
 *   instead of doubling up to 32 MB during start-up's allocation burst. V8 keeps those pages
 *   once the young generation shrinks back: they were ~40 MB of an idle agent's RSS (5-agent
 *   mesh idle 60 s: 167-179 → 129-132 MB). Tunnels do not need the larger young generation
 *   (bench/tunnel.ts --no-relay, with MALLOC_ARENA_MAX=2: forward 561 → 692 MB/s, CPU per GB
 *   2.42 → 2.51 s). `--max-semi-space-size` would say the same, but V8 reads it only when it
 *   sets up the heap, before this code runs.
 *   Not `--optimize-for-size`, a smaller `--heap-growing-percent`, nor a forced full
 *   collection once start-up is over: each saved ~10 MB more when idle but left V8 with tight
 *   heap limits, and with Buffers counted in the global limit a tunnel's traffic then ran into
 *   full collections (forward 561 → 248, → 297 and 669 → 303 MB/s).
 */
function tuneHeapForAgent(): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit');
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** Registers `agent`. */
export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the agent in the foreground (what systemd runs)')
    .option('--quiet', 'log only to DATA/logs/agent.log, not stdout')
    .action(async (opts, cmd: Command) => {
      tuneHeapForAgent();
      const { startDaemon } = await import('../daemon.ts');
      const daemon = await startDaemon({ dataDir: dataDirOf(cmd), stdoutLogs: !opts.quiet });
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals > 1) {
          // A second signal means the operator does not want to wait.
          daemon.logger.warn({ sig }, 'second signal: exiting now');
          process.exit(130);
        }
        daemon.logger.info({ sig }, 'shutting down (send again to force)');
        const force = setTimeout(() => process.exit(1), 15_000);
        force.unref();
        daemon
          .stop()
          .then(() => process.exit(0))
          .catch(() => process.exit(1));
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      await new Promise(() => {});
    });
}
