/**
 * App verbs: `deploy`, `rollback`, `releases`, `apps`, `start|stop|restart|rm`, `events`, `logs`.
 * Light at the top; `tar` (for `deploy --dir`) is loaded only when used.
 */
import type { Command } from 'commander';
// Types only (erased at run time): the CLI stays free of the agent's modules.
import type { AppInfo, DeployResult } from '../workloads/index.ts';
import { agentOf, collect, wantsJson } from './context.ts';
import { CliError, UsageError } from './errors.ts';
import { logLineFormatter, parseSince } from './log-lines.ts';
import { ago, formatDuration, printJson, printTable } from './output.ts';
import { uploadFrames } from './upload-frames.ts';

/** Bundle upload chunk: the socket's line limit is 1 MiB and base64 adds a third. */
const UPLOAD_CHUNK_BYTES = 512 * 1024;

/** Registers the app verbs. */
export function registerApps(program: Command): void {
  program
    .command('deploy')
    .description(
      'deploy a bundle (zip or tar.gz) as a new release; a release that fails its health check is rolled back',
    )
    .argument('<app>', 'app name (a DNS label)')
    .option('--url <url>', 'bundle URL: https, or http with --sha256')
    .option('--dir <path>', 'deploy a local directory (packed and uploaded by the CLI)')
    .option('--sha256 <hex>', 'expected sha256 of the bundle (required for an http URL)')
    .option(
      '--cmd <command>',
      "command to run in the release folder (default: the bundle's plexus.yaml; a new or changed one needs the exec grant)",
    )
    .option('--port <n>', 'port the app listens on (exposed in the mesh under the app name)')
    .option('--health <check>', 'health check: http://:PORT/PATH or tcp:PORT')
    .option('--health-timeout <s>', 'seconds the health check may take (default 30)')
    .option('--env <K=V>', 'env var, stored encrypted (repeatable)', collect, [])
    .option('--restart <policy>', 'always, on-failure or never')
    .option('--tenant <name>', 'tenant of a new app (operators limited to a tenant must give theirs)')
    .option(
      '--user <name>',
      "run as this existing user instead of the app's own plexus-app-NAME (exec grant)",
    )
    .option('--allow-root', 'let the app run as root (admins only; with --user root)')
    .option(
      '--cap <name>',
      'give the app a capability: NET_BIND_SERVICE, NET_RAW or IPC_LOCK (admins; repeatable; --cap none drops them)',
      collect,
      [],
    )
    .option('--json', 'print JSON')
    .action(async (app: string, opts, cmd: Command) => {
      if (!opts.url === !opts.dir) throw new UsageError('give exactly one of --url URL or --dir PATH');
      const args: Record<string, unknown> = {
        app,
        sha256: opts.sha256,
        cmd: opts.cmd,
        health: opts.health,
        restart: opts.restart,
        tenant: opts.tenant,
        user: opts.user,
      };
      if (opts.allowRoot) args.allowRoot = true;
      if (opts.cap.length)
        args.capabilities = opts.cap
          .filter((c: string) => c.toLowerCase() !== 'none')
          .map((c: string) => c.toUpperCase().replace(/^CAP_/, ''));
      if (opts.port !== undefined) args.port = intOption('--port', opts.port, 1, 65535);
      if (opts.healthTimeout !== undefined)
        args.healthTimeoutS = intOption('--health-timeout', opts.healthTimeout, 1, 3600);
      if (opts.restart && !['always', 'on-failure', 'never'].includes(opts.restart)) {
        throw new UsageError('--restart is always, on-failure or never');
      }
      if (opts.env.length) args.env = parseEnv(opts.env);
      let input: AsyncIterable<unknown> | undefined;
      if (opts.url) args.url = opts.url;
      else {
        input = await packDirectory(opts.dir);
        args.upload = {};
      }
      const progress = progressPrinter();
      try {
        const r = (await agentOf(cmd).call('apps.deploy', args, {
          input,
          onData: progress.update,
        })) as DeployResult;
        progress.done();
        if (wantsJson(cmd)) return printJson(r);
        process.stdout.write(
          `deployed ${r.app} release ${r.release}${r.previous ? ` (was ${r.previous})` : ''}: ${r.status}, pid ${r.pid ?? '-'}, healthy in ${(r.tookMs / 1000).toFixed(1)} s\n`,
        );
      } finally {
        progress.done();
      }
    });

  program
    .command('rollback')
    .description('put the previous release back (or --to RELEASE), health gated')
    .argument('<app>', 'app name')
    .option('--to <release>', 'release id (see plexus releases APP)')
    .option('--json', 'print JSON')
    .action(async (app: string, opts, cmd: Command) => {
      const progress = progressPrinter();
      try {
        const r = (await agentOf(cmd).call(
          'apps.rollback',
          { app, to: opts.to },
          { onData: progress.update },
        )) as DeployResult;
        progress.done();
        if (wantsJson(cmd)) return printJson(r);
        process.stdout.write(
          `rolled ${r.app} back to release ${r.release} (was ${r.previous ?? '-'}): ${r.status}, pid ${r.pid ?? '-'}\n`,
        );
      } finally {
        progress.done();
      }
    });

  program
    .command('releases')
    .description("an app's releases, newest first")
    .argument('<app>', 'app name')
    .option('--json', 'print JSON')
    .action(async (app: string, _opts, cmd: Command) => {
      const rows = (await agentOf(cmd).call('apps.releases', { app })) as {
        id: string;
        createdAt: number;
        source: string;
        sha256: string;
        bytes: number;
        status: string;
        cmd: string;
      }[];
      if (wantsJson(cmd)) return printJson(rows);
      printTable(
        ['release', 'status', 'created', 'size', 'sha256', 'source'],
        rows.map((r) => [
          r.id,
          r.status === 'active' ? 'current' : r.status,
          ago(r.createdAt),
          mb(r.bytes),
          r.sha256.slice(0, 12),
          r.source,
        ]),
      );
    });

  program
    .command('apps')
    .description('the apps on this node with status, pid, restarts, CPU and memory')
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) => {
      const apps = (await agentOf(cmd).call('apps.list')) as AppInfo[];
      if (wantsJson(cmd)) return printJson(apps);
      if (!apps.length) {
        process.stdout.write('no apps yet; deploy one with \'plexus deploy APP --url URL --cmd "…"\'\n');
        return;
      }
      printTable(
        ['name', 'status', 'pid', 'release', 'restarts', 'uptime', 'cpu', 'mem', 'port'],
        apps.map((a) => [
          a.name,
          a.status,
          a.pid,
          a.release,
          a.restarts,
          a.uptimeS == null ? '-' : formatDuration(a.uptimeS),
          a.cpuPct == null ? '-' : `${a.cpuPct}%`,
          a.memMb == null ? '-' : `${a.memMb}MB`,
          a.port,
        ]),
      );
      const why = apps.find((a) => a.downtimeDeploys)?.downtimeDeploys;
      if (why)
        process.stdout.write(
          `note: deploys stop an app before starting the new release here (no zero-downtime: ${why})\n`,
        );
    });

  for (const [verb, action, describe, past] of [
    ['start', 'apps.start', 'start a stopped app', 'started'],
    ['stop', 'apps.stop', 'stop an app (SIGTERM, then SIGKILL after 10 s)', 'stopped'],
    ['restart', 'apps.restart', 'restart an app (env changes apply)', 'restarted'],
  ] as const) {
    program
      .command(verb)
      .description(describe)
      .argument('<app>', 'app name')
      .option('--json', 'print JSON')
      .action(async (app: string, _opts, cmd: Command) => {
        const a = (await agentOf(cmd).call(action, { app })) as AppInfo;
        if (wantsJson(cmd)) return printJson(a);
        process.stdout.write(`${past} ${a.name}: ${a.status}${a.pid ? `, pid ${a.pid}` : ''}\n`);
      });
  }

  program
    .command('rm')
    .description('stop an app and delete it with its releases, env and files')
    .argument('<app>', 'app name')
    .option('--json', 'print JSON')
    .action(async (app: string, _opts, cmd: Command) => {
      const r = await agentOf(cmd).call('apps.remove', { app });
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`removed ${app}\n`);
    });

  program
    .command('events')
    .description('what happened to apps and when: deploys, rollbacks, crashes, restarts')
    .argument('[app]', 'app name (default: every app)')
    .option('-n, --lines <n>', 'how many recent events', '50')
    .option('--json', 'print JSON')
    .action(async (app: string | undefined, opts, cmd: Command) => {
      const limit = intOption('-n', opts.lines, 1, 500);
      const rows = (await agentOf(cmd).call('apps.events', { app, limit })) as {
        at: number;
        app: string;
        kind: string;
        release: string | null;
        detail: string | null;
      }[];
      if (wantsJson(cmd)) return printJson(rows);
      printTable(
        ['time', 'app', 'event', 'release', 'detail'],
        rows.map((e) => [new Date(e.at).toISOString(), e.app, e.kind, e.release, e.detail]),
      );
    });

  program
    .command('logs')
    .description("an app's stdout and stderr, or the agent's own log with --system")
    .argument('[app]', 'app name')
    .option('-n, --lines <n>', 'how many recent lines', '100')
    .option('-f, --follow', 'keep printing new lines')
    .option('--system', "the agent's log (DATA/logs/agent.log)")
    .option('--since <duration>', 'only the lines of the last 90s, 10m, 2h, 7d')
    .option('--nostream', 'print what is there and exit (the default; the opposite of -f)')
    .option('--json', 'one JSON object a line')
    .action(async (app: string | undefined, opts, cmd: Command) => {
      if (!app === !opts.system) throw new UsageError('give an app name, or --system for the agent log');
      if (opts.nostream && opts.follow) throw new UsageError('--nostream and --follow contradict each other');
      const format = logLineFormatter({
        app,
        system: Boolean(opts.system),
        json: wantsJson(cmd),
        sinceMs: opts.since === undefined ? undefined : parseSince(opts.since),
      });
      // --since reaches back as far as the log does, unless -n says otherwise.
      const lines = intOption(
        '-n',
        opts.since && cmd.getOptionValueSource('lines') === 'default' ? '10000' : opts.lines,
        0,
        10_000,
      );
      const abort = new AbortController();
      const onSig = () => abort.abort();
      process.once('SIGINT', onSig);
      try {
        await agentOf(cmd).call(
          'apps.logs',
          { app, system: Boolean(opts.system), lines, follow: Boolean(opts.follow) },
          {
            signal: abort.signal,
            onData: (d) => {
              const out = (d as { lines: string[] }).lines.flatMap((l) => format(l) ?? []);
              if (out.length) process.stdout.write(`${out.join('\n')}\n`);
            },
          },
        );
      } catch (err) {
        if (abort.signal.aborted) return; // Ctrl-C ends a follow
        throw err;
      } finally {
        process.off('SIGINT', onSig);
      }
    });
}

/** Packs a directory as a gzipped tar stream and yields it as upload frames. */
async function packDirectory(dir: string): Promise<AsyncIterable<unknown>> {
  const { statSync } = await import('node:fs');
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new UsageError(`--dir ${dir} is not a readable directory`);
  }
  const tar = await import('tar');
  const { readdirSync } = await import('node:fs');
  const entries = readdirSync(dir).filter((e) => e !== '.git');
  if (!entries.length) throw new CliError(`--dir ${dir} is empty; nothing to deploy`);
  const stream = tar.c({ gzip: { level: 1 }, cwd: dir, portable: true, follow: false }, entries);
  return uploadFrames(stream as AsyncIterable<Buffer>, UPLOAD_CHUNK_BYTES);
}

/** Progress on a TTY (stderr), silent otherwise so scripts and --json stay clean. */
function progressPrinter() {
  const tty = Boolean(process.stderr.isTTY);
  let shown = false;
  return {
    update(d: unknown) {
      if (!tty) return;
      const p = d as {
        phase: string;
        bytes?: number;
        total?: number;
        elapsedMs?: number;
        check?: string;
        release?: string;
        to?: string | null;
      };
      let text = '';
      if (p.phase === 'download' || p.phase === 'upload') {
        text = `${p.phase === 'download' ? 'downloading' : 'uploading'} ${mb(p.bytes ?? 0)}${p.total ? ` / ${mb(p.total)} (${Math.floor(((p.bytes ?? 0) / p.total) * 100)}%)` : ''}`;
      } else if (p.phase === 'extract') text = 'extracting';
      else if (p.phase === 'start') text = `starting release ${p.release}`;
      else if (p.phase === 'health')
        text = `waiting for health check ${p.check} (${((p.elapsedMs ?? 0) / 1000).toFixed(1)} s)`;
      else if (p.phase === 'rollback')
        text = p.to ? `unhealthy: rolling back to ${p.to}` : 'unhealthy: stopping';
      process.stderr.write(`\r\x1b[2K${text}`);
      shown = true;
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[2K');
      shown = false;
    },
  };
}

/** Parses repeated K=V flags; names are checked again by the agent. */
export function parseEnv(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    if (eq < 1 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new UsageError(
        `bad env '${name.slice(0, 64)}': use NAME=value, NAME is letters, digits and _ (not starting with a digit)`,
      );
    }
    out[name] = pair.slice(eq + 1);
  }
  return out;
}

function intOption(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}`);
  return n;
}

function mb(bytes: number): string {
  return bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1048576).toFixed(1)} MB`;
}
