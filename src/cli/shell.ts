/**
 * `plexus shell NODE [--user U] [-- CMD…]`, and the session audit: `plexus audit sessions`,
 * `plexus audit play ID` (issue 16; docs/shell.md). Light: only the signing client is loaded.
 */
import type { Command } from 'commander';
import { dataPaths } from '../config/paths.ts';
import type { SessionEntry } from '../shell/session-log.ts';
import type { AgentClient } from './client.ts';
import { agentOf, dataDirOf, wantsJson } from './context.ts';
import { CliError, UsageError } from './errors.ts';
import { ago, printJson, printTable } from './output.ts';

/** A signing client addressed to `node` (the local agent's socket, or `--api`). */
export async function sessionClient(cmd: Command, node: string): Promise<AgentClient> {
  const g = cmd.optsWithGlobals() as { key?: string };
  const paths = dataPaths(dataDirOf(cmd));
  const { remoteClient } = await import('./remote-client.ts');
  return remoteClient({
    url: process.env.PLEXUS_API || undefined,
    socketPath: paths.socket,
    keyFile: g.key ?? process.env.PLEXUS_KEY ?? paths.adminKey,
    dataDir: paths.dataDir,
    node,
  });
}

/** Registers `shell` and the `audit sessions` / `audit play` subcommands. */
export function registerShell(program: Command): void {
  program
    .command('shell')
    .description('open a terminal on a node (through any entry node, NAT included)')
    .argument('<node>', 'node name (or peer id)')
    .argument('[cmd...]', 'a command to run instead of the login shell, after --')
    .option('--user <user>', "run as this user (default: the node's shell.user; root only for admins)")
    .action(async (node: string, argv: string[], opts: { user?: string }, cmd: Command) => {
      const { runRemoteSession } = await import('./session.ts');
      process.exitCode = await runRemoteSession(await sessionClient(cmd, node), {
        mode: 'pty',
        user: opts.user,
        cmd: argv,
      });
    });

  const audit = program.commands.find((c) => c.name() === 'audit');
  if (!audit) throw new Error('register the audit verb before the shell verbs');
  audit
    .command('sessions')
    .description('shell, exec -i/-t sessions run on a node: who, as whom, when, how they ended')
    .option('-n, --lines <n>', 'how many sessions', '50')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const limit = Number(opts.lines);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
        throw new UsageError('-n must be 1..10000');
      const rows = (await agentOf(cmd).call('shell.sessions', { limit })) as SessionEntry[];
      if (wantsJson(cmd)) return printJson(rows);
      if (rows.length === 0) return void process.stdout.write('no sessions yet\n');
      printTable(
        ['started', 'id', 'kid', 'user', 'mode', 'command', 'ended', 'exit', 'reason', 'in', 'out', 'rec'],
        rows.map((r) => [
          `${new Date(r.startedAt).toISOString()} (${ago(r.startedAt)})`,
          r.id,
          r.kid,
          r.user,
          r.mode,
          r.command.slice(0, 40),
          r.endedAt ? `${Math.round((r.endedAt - r.startedAt) / 1000)}s later` : 'running',
          r.exitCode ?? r.signal ?? '',
          r.reason ?? '',
          r.bytesIn,
          r.bytesOut,
          r.recorded ? 'yes' : 'no',
        ]),
      );
    });
  audit
    .command('play')
    .description('replay a recorded session (shell.record: true) in this terminal, at its own pace')
    .argument('<id>', 'session id (plexus audit sessions)')
    .option('--speed <x>', 'play faster (2) or slower (0.5)', '1')
    .option('--max-wait <s>', 'cap each pause at this many seconds', '2')
    .option('--raw', 'print the asciicast file instead of playing it')
    .action(async (id: string, opts: { speed: string; maxWait: string; raw?: boolean }, cmd: Command) => {
      const speed = Number(opts.speed);
      const maxWait = Number(opts.maxWait);
      if (!(speed > 0 && speed <= 100)) throw new UsageError('--speed must be above 0 and at most 100');
      if (!(maxWait >= 0)) throw new UsageError('--max-wait must be a number of seconds');
      const lines: string[] = [];
      await agentOf(cmd).call(
        'shell.recording',
        { id },
        {
          onData: (d) => {
            if (typeof d === 'string') lines.push(...d.split('\n'));
          },
        },
      );
      if (opts.raw) return void process.stdout.write(`${lines.join('\n')}\n`);
      await play(lines, speed, maxWait);
    });
}

/** Writes an asciicast v2's output events with their pauses (each at most `maxWait`). */
async function play(lines: string[], speed: number, maxWait: number): Promise<void> {
  let last = 0;
  for (const [i, line] of lines.entries()) {
    if (i === 0 || !line) continue;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      throw new CliError(`line ${i + 1} of the recording is not JSON`);
    }
    if (!Array.isArray(event) || typeof event[0] !== 'number') continue;
    const [t, type, data] = event as [number, string, string];
    const wait = Math.min(Math.max(0, t - last), maxWait) / speed;
    last = t;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
    if (type === 'o' && typeof data === 'string') process.stdout.write(data);
  }
}
