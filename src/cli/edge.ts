/** `plexus edge install|status|uninstall` and `plexus domain add|ls|rm`: the Caddy edge (issue 18, docs/edge.md). */
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { agentOf, wantsJson } from './context.ts';
import { UsageError } from './errors.ts';
import { printJson, printTable } from './output.ts';

interface EdgeStatus {
  installed: boolean;
  settings: {
    httpPort: number;
    httpsPort: number;
    issuer: string;
    email: string | null;
    acmeCa?: string | null;
  } | null;
  daemon: { state: string; pid: number | null; supervisor: string; restarts: number } | null;
  applied: boolean;
  adminSocket: string;
  rootCert: string;
  domains: number;
  certProblems?: number;
}

interface DomainRow {
  host: string;
  app: string;
  createdAt: number;
  cert: string;
  certExpires: number | null;
  certIssuer: string | null;
  certError: string | null;
  checkedAt: number | null;
}

function port(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`'${text}' is not a port (1..65535)`);
  return n;
}

/** Registers `edge` and `domain`. */
export function registerEdge(program: Command): void {
  const edge = program
    .command('edge')
    .description('the HTTPS edge (Caddy) that serves apps under their domains');
  edge
    .command('install')
    .description(
      "install Caddy with apt and run it as this node's edge (admin); run again to change ports or issuer",
    )
    .option('--https-port <port>', 'port for https (default 443)', port)
    .option('--http-port <port>', 'port for http: ACME challenges and redirects (default 80)', port)
    .option(
      '--internal-ca',
      "certificates from Caddy's own local CA instead of Let's Encrypt (tests, private networks)",
    )
    .option('--email <address>', 'ACME account email for expiry notices')
    .option(
      '--acme-ca <url>',
      "another ACME CA's directory URL (a staging or private CA) instead of Let's Encrypt",
    )
    .option(
      '--acme-ca-root <file>',
      "the private ACME CA's PEM root(s): for its https endpoint and its certificates",
    )
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const args = {
        ...(opts.acmeCa ? { acmeCa: opts.acmeCa } : {}),
        ...(opts.acmeCaRoot ? { acmeCaRoot: readRoot(opts.acmeCaRoot) } : {}),
        ...(opts.httpsPort ? { httpsPort: opts.httpsPort } : {}),
        ...(opts.httpPort ? { httpPort: opts.httpPort } : {}),
        issuer: opts.internalCa ? 'internal' : 'acme',
        ...(opts.email ? { email: opts.email } : {}),
      };
      const s = (await agentOf(cmd).call('edge.install', args)) as EdgeStatus;
      if (wantsJson(cmd)) return printJson(s);
      printStatus(s);
    });
  edge
    .command('status')
    .description('whether the edge is installed, its ports, issuer and Caddy process')
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) => {
      const s = (await agentOf(cmd).call('edge.status', {})) as EdgeStatus;
      if (wantsJson(cmd)) return printJson(s);
      printStatus(s);
    });
  edge
    .command('uninstall')
    .description('stop Caddy and remove what edge install added (admin); domains are kept')
    .option('--purge', "also delete Caddy's configuration files")
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const r = (await agentOf(cmd).call('edge.uninstall', { purge: Boolean(opts.purge) })) as {
        removed: string[];
      };
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`edge removed${r.removed.length ? ` (packages: ${r.removed.join(', ')})` : ''}\n`);
    });

  const domain = program.command('domain').description("an app's domains, served over https by the edge");
  domain
    .command('add')
    .description('serve APP at https://HOST with an automatic certificate; HOST must resolve to this node')
    .argument('<app>', 'app name')
    .argument('<host>', 'host name, e.g. shop.example.com')
    .option('--no-dns-check', 'skip the check that HOST resolves to this node')
    .option('--json', 'print JSON')
    .action(async (app: string, host: string, opts, cmd: Command) => {
      const r = (await agentOf(cmd).call('domains.add', {
        app,
        host,
        dnsCheck: opts.dnsCheck !== false,
      })) as DomainRow;
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`https://${r.host} → ${r.app} (certificate: ${r.cert}; see plexus domain ls)\n`);
    });
  domain
    .command('ls')
    .description('the domains this node serves, with their certificate state')
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) => {
      const rows = (await agentOf(cmd).call('domains.list', {})) as DomainRow[];
      if (wantsJson(cmd)) return printJson(rows);
      if (!rows.length) {
        process.stdout.write('no domains; add one with plexus domain add APP HOST\n');
        return;
      }
      printTable(
        ['host', 'app', 'cert', 'expires', 'issuer', 'problem'],
        rows.map((r) => [
          r.host,
          r.app,
          r.cert,
          r.certExpires ? new Date(r.certExpires).toISOString().slice(0, 16).replace('T', ' ') : null,
          r.certIssuer,
          r.certError,
        ]),
      );
    });
  domain
    .command('rm')
    .description('stop serving a domain')
    .argument('<host>', 'host name')
    .option('--json', 'print JSON')
    .action(async (host: string, _opts, cmd: Command) => {
      const r = (await agentOf(cmd).call('domains.remove', { host })) as { host: string; app: string };
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`${r.host} is no longer served (was ${r.app})\n`);
    });
}

/** The PEM file given to --acme-ca-root, read here: the agent may be another node. */
function readRoot(file: string): string {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw new UsageError(`cannot read --acme-ca-root ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  if (size > 16 * 1024)
    throw new UsageError(`--acme-ca-root ${file} is over 16 KiB; give the CA's root certificate only`);
  return readFileSync(file, 'utf8');
}

function printStatus(s: EdgeStatus): void {
  if (!s.installed || !s.settings) {
    process.stdout.write('the edge is not installed; run plexus edge install\n');
    return;
  }
  const d = s.daemon;
  process.stdout.write(
    `edge: Caddy ${d?.state ?? 'unknown'}${d?.pid ? ` (pid ${d.pid}, ${d.supervisor})` : ''}, https :${s.settings.httpsPort}, http :${s.settings.httpPort}\n` +
      `certificates: ${s.settings.issuer === 'internal' ? `internal CA (root: ${s.rootCert})` : s.settings.acmeCa ? `ACME (${s.settings.acmeCa})` : "ACME (Let's Encrypt, ZeroSSL)"}\n` +
      `config: ${s.applied ? 'applied' : 'NOT applied (the agent retries)'}; ${s.domains} domain(s)` +
      `${s.certProblems ? `, ${s.certProblems} with a certificate problem (see plexus domain ls)` : ''}\n`,
  );
}
