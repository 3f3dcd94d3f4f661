/** `plexus env set|unset|ls` and `plexus hook secret`: an app's encrypted env and webhook secret. */
import type { Command } from 'commander';
import { parseEnv } from './apps.ts';
import { agentOf, wantsJson } from './context.ts';
import { UsageError } from './errors.ts';
import { ago, printJson, printTable } from './output.ts';

interface EnvChange {
  app: string;
  names: string[];
  pendingRestart: boolean;
}

/** Registers `env` and `hook`. */
export function registerAppEnv(program: Command): void {
  const env = program.command('env').description("an app's env vars (values encrypted at rest)");
  env
    .command('set')
    .description(
      'set env vars (the exec grant: env changes what the app runs); they apply on the next start or restart',
    )
    .argument('<app>', 'app name')
    .argument('<pairs...>', 'NAME=value …')
    .option('--json', 'print JSON')
    .action(async (app: string, pairs: string[], _opts, cmd: Command) => {
      const r = (await agentOf(cmd).call('apps.env.set', { app, vars: parseEnv(pairs) })) as EnvChange;
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`set ${r.names.join(', ')} on ${app}${applyHint(r)}\n`);
    });
  env
    .command('unset')
    .description('remove env vars (the exec grant); they are gone after the next start or restart')
    .argument('<app>', 'app name')
    .argument('<names...>', 'NAME …')
    .option('--json', 'print JSON')
    .action(async (app: string, names: string[], _opts, cmd: Command) => {
      for (const n of names) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) throw new UsageError(`bad env name '${n.slice(0, 64)}'`);
      }
      const r = (await agentOf(cmd).call('apps.env.unset', { app, names })) as EnvChange;
      if (wantsJson(cmd)) return printJson(r);
      const missing = names.filter((n) => !r.names.includes(n));
      process.stdout.write(
        `${r.names.length ? `removed ${r.names.join(', ')} from ${app}` : `nothing removed from ${app}`}${missing.length ? ` (not set: ${missing.join(', ')})` : ''}${applyHint(r)}\n`,
      );
    });
  env
    .command('ls')
    .description('env var names (values with --reveal, admins only)')
    .argument('<app>', 'app name')
    .option('--reveal', 'show the values')
    .option('--json', 'print JSON')
    .action(async (app: string, opts, cmd: Command) => {
      const rows = (await agentOf(cmd).call('apps.env.list', { app, reveal: Boolean(opts.reveal) })) as {
        name: string;
        updatedAt: number;
        value?: string;
      }[];
      if (wantsJson(cmd)) return printJson(rows);
      if (!rows.length) {
        process.stdout.write(`no env vars on ${app}\n`);
        return;
      }
      if (opts.reveal)
        printTable(
          ['name', 'value'],
          rows.map((r) => [r.name, r.value]),
        );
      else
        printTable(
          ['name', 'changed'],
          rows.map((r) => [r.name, ago(r.updatedAt)]),
        );
    });

  const hook = program
    .command('hook')
    .description('webhook deploys: POST /v1/hooks/APP signed with the app secret');
  hook
    .command('secret')
    .description("show the app's webhook secret (made on first use), or --rotate it")
    .argument('<app>', 'app name')
    .option('--rotate', 'replace the secret; the old one stops working')
    .option('--json', 'print JSON')
    .action(async (app: string, opts, cmd: Command) => {
      const r = (await agentOf(cmd).call('apps.hook.secret', { app, rotate: Boolean(opts.rotate) })) as {
        app: string;
        secret: string;
        created: boolean;
      };
      if (wantsJson(cmd)) return printJson(r);
      if (process.stdout.isTTY) {
        process.stderr.write(
          `webhook: POST /v1/hooks/${app} with body {"url": "…", "sha256": "…"} and headers\n` +
            '  X-Plexus-Timestamp: <unix seconds>\n' +
            '  X-Plexus-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>\n',
        );
      }
      process.stdout.write(`${r.secret}\n`);
    });
}

function applyHint(r: EnvChange): string {
  return r.pendingRestart
    ? `; applies on the next restart: plexus restart ${r.app}`
    : '; applies when the app next starts';
}
