/**
 * Runs a `plexus` program: parses the command line, and turns what a verb throws into one line on
 * stderr and an exit code (usage mistakes 2, expected errors 1). Shared by the CLI (main.ts) and
 * the agent's own entry (agent-main.ts).
 */
import { type Command, CommanderError } from 'commander';
import { CliError } from './errors.ts';

function fail(err: unknown): never {
  if (process.env.PLEXUS_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  if (err instanceof CliError) {
    process.stderr.write(`plexus: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  const e = err as Error & { code?: string };
  if (e && typeof e.code === 'string' && typeof e.message === 'string' && 'kind' in e) {
    process.stderr.write(`plexus: ${e.message}\n`);
    process.exit(1);
  }
  process.stderr.write(
    `plexus: unexpected error: ${e?.message ?? String(err)} (PLEXUS_DEBUG=1 shows details)\n`,
  );
  process.exit(1);
}

/** Parses `process.argv` with `program` (made with `exitOverride()`) and runs the verb. */
export async function runCli(program: Command): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are "errors" in exitOverride mode; usage mistakes exit 2.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) {
        process.exit(0);
      }
      // Key ids are base64url and 1 in 64 starts with '-', which reads as an option.
      const id = /unknown option '(-[A-Za-z0-9_][A-Za-z0-9_-]{7,})'/.exec(err.message)?.[1];
      if (err.code === 'commander.unknownOption' && id) {
        process.stderr.write(
          `plexus: if ${id} is an id, end the options with -- before it: … [options] -- ${id}\n`,
        );
      }
      process.exit(2);
    }
    fail(err);
  }
}
