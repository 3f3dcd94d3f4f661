/**
 * `plexus exec NODE -- CMD ARGS…`: runs a command on a node as a signed command (`node.exec`),
 * streams its stdout and stderr here, and exits with its exit code (124 on timeout, 128+N when
 * killed by signal N). Kept tiny: it loads only the signing client, never libp2p or zod.
 */
import { constants } from 'node:os';
import type { Command } from 'commander';
import { CliError, UsageError } from './errors.ts';
import { sessionClient } from './shell.ts';

interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  truncated: boolean;
}

/** Runs the call; a command that does not exist exits 127, as a shell would. */
async function run<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const code = (err as { body?: { code?: string } }).body?.code;
    if (code === 'EXEC_NOT_FOUND') throw new CliError((err as Error).message, 127);
    throw err;
  }
}

/** Registers `exec`. */
export function registerExec(program: Command): void {
  program
    .command('exec')
    .description('run a command on a node; stdout/stderr stream back, its exit code is ours')
    .argument('<node>', 'node name (or peer id)')
    .argument('<cmd...>', 'the command and its arguments, after --')
    .option('-i, --interactive', 'stream stdin to the command (with backpressure and EOF)')
    .option('-t, --tty', 'run the command on a terminal (keys, resizes; with -i as in exec -it)')
    .option('--timeout <seconds>', 'kill the command after this long', '60')
    .option(
      '--max-output <bytes>',
      'kill the command once it has written this much',
      String(16 * 1024 * 1024),
    )
    .action(async (node: string, argv: string[], opts, cmd: Command) => {
      const timeoutS = Number(opts.timeout);
      const maxOutputBytes = Number(opts.maxOutput);
      if (!Number.isInteger(timeoutS) || timeoutS < 1 || timeoutS > 3600)
        throw new UsageError('--timeout must be 1..3600 seconds');
      if (!Number.isInteger(maxOutputBytes) || maxOutputBytes < 1)
        throw new UsageError('--max-output must be a positive number of bytes');
      const client = await sessionClient(cmd, node);
      if (opts.interactive || opts.tty) {
        // A session (docs/shell.md): the shell grant, the session audit, no timeout but idleness.
        const { runRemoteSession } = await import('./session.ts');
        process.exitCode = await run(() =>
          runRemoteSession(client, { mode: opts.tty ? 'pty' : 'pipe', cmd: argv }),
        );
        return;
      }
      const r = (await run(() =>
        client.call(
          'node.exec',
          { cmd: argv[0], args: argv.slice(1), timeoutS, maxOutputBytes },
          {
            onData: (d) => {
              const { stream, data } = d as { stream: 'stdout' | 'stderr'; data: string };
              const out = stream === 'stderr' ? process.stderr : process.stdout;
              if (!out.write(data)) return new Promise((r) => out.once('drain', () => r()));
            },
          },
        ),
      )) as ExecResult;
      if (r.timedOut)
        process.stderr.write(`plexus: ${argv[0]} timed out after ${timeoutS}s and was killed\n`);
      if (r.truncated)
        process.stderr.write(`plexus: ${argv[0]} wrote more than ${maxOutputBytes} bytes and was killed\n`);
      if (r.timedOut) process.exitCode = 124;
      else if (r.exitCode !== null) process.exitCode = r.exitCode;
      else if (r.signal) process.exitCode = 128 + (constants.signals[r.signal as NodeJS.Signals] ?? 0);
      else throw new CliError('the command ended without an exit status');
    });
}
