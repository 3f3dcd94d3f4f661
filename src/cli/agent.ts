/** `plexus agent`: run the daemon in the foreground. */
import type { Command } from 'commander';
import { tuneAgentRuntime } from '../runtime/index.ts';
import { dataDirOf } from './context.ts';
import { examples } from './examples.ts';

/** Registers `agent`. */
export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the agent in the foreground (what systemd runs)')
    // Here, not in verb-examples.ts: the agent's bundle (agent-main.ts) registers this verb alone.
    .addHelpText('after', examples('plexus agent', 'plexus agent --data-dir /var/lib/plexus'))
    .option('--quiet', 'log only to DATA/logs/agent.log, not stdout')
    .action(async (opts, cmd: Command) => {
      // Its V8 flags must be set before the daemon's modules load (src/runtime/heap.ts).
      const runtime = tuneAgentRuntime();
      const { startDaemon } = await import('../daemon.ts');
      const daemon = await startDaemon({ dataDir: dataDirOf(cmd), stdoutLogs: !opts.quiet });
      runtime.start(daemon.logger.child({ module: 'runtime' }));
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
        runtime.stop();
        daemon
          .stop()
          .then(() => process.exit(0))
          .catch((err: Error) => {
            // Say why: the log may be the thing that failed to close.
            process.stderr.write(`plexus: shutdown failed: ${err?.stack ?? err}\n`);
            process.exit(1);
          });
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      await new Promise(() => {});
    });
}
