/** `plexus token create|ls|revoke`: join tokens (needs the admin key on the local agent). */
import type { Command } from 'commander';
import { agentOf, wantsJson } from './context.ts';
import { UsageError } from './errors.ts';
import { ago, printJson, printTable } from './output.ts';

function parseTtl(text: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`bad --ttl '${text}': use forms like 90s, 30m, 1h, 7d`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

/** Registers `token`. */
export function registerToken(program: Command): void {
  const token = program.command('token').description('join tokens for new servers');
  token
    .command('create')
    .description('create a join token (a secret until it is used up or expires: whoever holds it can join)')
    .option('--ttl <duration>', 'lifetime, e.g. 30m, 1h, 7d', '1h')
    .option('--uses <n>', 'how many servers may join with it', '1')
    .option(
      '--tags <a,b>',
      'tags given to nodes that join with it',
      (v: string) => v.split(',').filter(Boolean),
      [],
    )
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const uses = Number(opts.uses);
      if (!Number.isInteger(uses) || uses < 1) throw new UsageError('--uses must be a positive whole number');
      const r = (await agentOf(cmd).call('mesh.token.create', {
        ttlS: parseTtl(opts.ttl),
        uses,
        tags: opts.tags,
      })) as {
        token: string;
        id: string;
        expiresAt: number;
        uses: number;
      };
      if (wantsJson(cmd)) return printJson(r);
      if (process.stdout.isTTY) {
        process.stderr.write(
          `token ${r.id}: ${r.uses} use(s), expires ${new Date(r.expiresAt).toISOString()}\n` +
            `on the new server run: plexus join <token> --name NAME\n`,
        );
      }
      process.stdout.write(`${r.token}\n`);
    });
  token
    .command('ls')
    .description('tokens created on this node and their use')
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) => {
      const rows = (await agentOf(cmd).call('mesh.token.list')) as {
        id: string;
        createdAt: number;
        expiresAt: number;
        uses: number;
        used: number;
        state: string;
        tags: string[];
      }[];
      if (wantsJson(cmd)) return printJson(rows);
      printTable(
        ['id', 'state', 'used', 'expires', 'created', 'tags'],
        rows.map((t) => [
          t.id,
          t.state,
          `${t.used}/${t.uses}`,
          new Date(t.expiresAt).toISOString(),
          ago(t.createdAt),
          t.tags.join(','),
        ]),
      );
    });
  token
    .command('revoke')
    .description('revoke a join token on every node')
    .argument('<id>', 'token id (from token ls)')
    .option('--json', 'print JSON')
    .action(async (id: string, _opts, cmd: Command) => {
      const r = await agentOf(cmd).call('mesh.token.revoke', { id });
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`revoked token ${id}\n`);
    });
}
