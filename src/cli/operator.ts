/**
 * `plexus operator keygen|use|add|ls|revoke` and `plexus audit`. `keygen` and `use` need no
 * agent: they record the network's admin key beside an operator key (KEY.network), which the
 * remote CLI checks every agent against (network-record.ts). `add` and `revoke` are signed by
 * the admin key: the local agent's, or, with `--api`, the operator's own `--key` (which must then
 * be the admin key), signed here and merged by the remote agent.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
// A type only: erased at run time, so the verb loads nothing of the command subsystem.
import type { AuditEntry as AuditRow } from '../commands/audit.ts';
import { agentOf, wantsJson } from './context.ts';
import { CliError, UsageError } from './errors.ts';
import { ago, printJson, printTable } from './output.ts';

interface KeyRow {
  kid: string;
  role: string;
  tenant: string | null;
  exec: boolean;
  shell?: boolean;
  expiresAt: number | null;
  state: string;
  source: string;
}

function parseDuration(text: string): number {
  const m = /^(\d{1,7})([smhd])$/.exec(text.trim());
  if (!m) throw new UsageError(`bad duration '${text}': use forms like 90m, 12h, 30d`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** A public key from `--pub`: 43 base64url characters, or a key file / .pub file holding one. */
function readPublicKey(arg: string): string {
  if (/^[A-Za-z0-9_-]{43}$/.test(arg)) return arg;
  let text: string;
  try {
    text = readFileSync(arg, 'utf8');
  } catch {
    throw new UsageError(`--pub ${arg}: neither a public key (43 base64url chars) nor a readable file`);
  }
  try {
    const parsed = JSON.parse(text) as { publicKey?: unknown };
    if (typeof parsed.publicKey === 'string' && /^[A-Za-z0-9_-]{43}$/.test(parsed.publicKey))
      return parsed.publicKey;
  } catch {
    if (/^[A-Za-z0-9_-]{43}$/.test(text.trim())) return text.trim();
  }
  throw new UsageError(`${arg} holds no plexus public key`);
}

const remote = () => Boolean(process.env.PLEXUS_API);

/** The admin signer for remote grants: the `--key` file. */
async function remoteAdmin(cmd: Command) {
  const { readKeyFile } = await import('../crypto/ed25519.ts');
  const file = (cmd.optsWithGlobals() as { key?: string }).key ?? process.env.PLEXUS_KEY;
  if (!file) throw new UsageError('with --api, granting and revoking need --key ADMIN_KEY_FILE');
  return readKeyFile(file);
}

/** Registers `operator` and `audit`. */
export function registerOperator(program: Command): void {
  const op = program.command('operator').description('operator keys: who may send signed commands');

  op.command('keygen')
    .description('create an operator key pair (no agent needed); FILE.pub holds the public half')
    .requiredOption('--out <file>', 'where to write the secret key (mode 0600)')
    .option(
      '--admin <key|file|dir>',
      "the network's admin public key, recorded in FILE.network (see 'operator use')",
    )
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const { generateSigner, writeKeyFile, b64u } = await import('../crypto/ed25519.ts');
      const { writeFileSync } = await import('node:fs');
      const records = await import('./network-record.ts');
      // Read before anything is written, so a bad --admin leaves no half-made key behind.
      const admin = opts.admin === undefined ? undefined : records.adminKeyFromArg(opts.admin);
      const { signer, seed } = generateSigner();
      try {
        writeKeyFile(opts.out, seed, signer);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new CliError(
          code === 'EEXIST'
            ? `${opts.out} exists; choose another --out`
            : `cannot write ${opts.out}: ${(err as Error).message}`,
        );
      }
      const pub = { type: 'plexus-ed25519-public', kid: signer.kid, publicKey: b64u(signer.publicKey) };
      writeFileSync(`${opts.out}.pub`, `${JSON.stringify(pub, null, 2)}\n`, { mode: 0o644 });
      const record = admin ? records.writeNetworkRecord(opts.out, admin) : undefined;
      if (wantsJson(cmd))
        return printJson({
          ...pub,
          file: opts.out,
          publicFile: `${opts.out}.pub`,
          networkId: record?.networkId ?? null,
          networkFile: record?.path ?? null,
        });
      process.stdout.write(
        `wrote ${opts.out} (secret) and ${opts.out}.pub\n  kid        ${pub.kid}\n  public key ${pub.publicKey}\n` +
          (record ? `  network    ${record.networkId} (admin key recorded in ${record.path})\n` : '') +
          `next: on an admin node, 'plexus operator add --pub ${opts.out}.pub --role operator'\n` +
          (record
            ? ''
            : `then, to use it with --api: 'plexus operator use ${opts.out} --admin ADMIN' (the admin key's .pub or a member's keys/network.json)\n`),
      );
    });

  op.command('use')
    .description("record the network's admin key for an operator key, so --api calls can check who answers")
    .argument('<keyfile>', 'the operator key (its record is written to KEYFILE.network, mode 0644)')
    .requiredOption(
      '--admin <key|file|dir>',
      "admin public key, the admin's .pub or key file, a network.json, or a data dir",
    )
    .option('--json', 'print JSON')
    .action(async (keyFile: string, opts, cmd: Command) => {
      const { readKeyFile } = await import('../crypto/ed25519.ts');
      const records = await import('./network-record.ts');
      try {
        readKeyFile(keyFile);
      } catch (err) {
        throw new UsageError(`${(err as Error).message}; 'operator use' takes the secret key file`);
      }
      const r = records.writeNetworkRecord(keyFile, records.adminKeyFromArg(opts.admin));
      if (wantsJson(cmd))
        return printJson({
          file: keyFile,
          networkFile: r.path,
          networkId: r.networkId,
          replaced: r.replaced ?? null,
        });
      process.stdout.write(
        `recorded network ${r.networkId} for ${keyFile} in ${r.path}${r.replaced ? ` (was ${r.replaced})` : ''}; ` +
          `--api calls with this key now check every agent against its admin key\n`,
      );
    });

  op.command('add')
    .description('grant a key a role on every node (admin-signed, gossiped)')
    .requiredOption('--pub <key|file>', 'public key, or a key / .pub file')
    .requiredOption('--role <role>', 'admin, operator or viewer')
    .option('--tenant <name>', 'limit an operator to the apps of this tenant')
    .option('--expires <duration>', 'grant lifetime, e.g. 12h, 30d')
    .option('--exec', "allow an operator to run 'plexus exec'")
    .option('--shell', "allow the key to open 'plexus shell', 'exec -i/-t' and 'cp' sessions")
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      if (!['admin', 'operator', 'viewer'].includes(opts.role))
        throw new UsageError('--role must be admin, operator or viewer');
      const pubkey = readPublicKey(opts.pub);
      const expiresS = opts.expires ? parseDuration(opts.expires) : undefined;
      let args: Record<string, unknown> = {
        pubkey,
        role: opts.role,
        tenant: opts.tenant,
        expiresS,
        exec: opts.exec,
        shell: opts.shell,
      };
      if (remote()) {
        const [{ signGrant }, { keyId, fromB64u }] = await Promise.all([
          import('../mesh/operators.ts'),
          import('../crypto/ed25519.ts'),
        ]);
        const grant = signGrant(
          {
            kid: keyId(fromB64u(pubkey)),
            pubkey,
            role: opts.role,
            tenant: opts.tenant,
            exp: expiresS ? Math.floor(Date.now() / 1000) + expiresS : undefined,
            exec: opts.exec || undefined,
            shell: opts.shell || undefined,
            at: Date.now(),
          },
          await remoteAdmin(cmd),
        );
        args = { grant };
      }
      const r = (await agentOf(cmd).call('operator.add', args)) as {
        kid: string;
        role: string;
        tenant: string | null;
      };
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(
        `granted ${r.kid} the role ${r.role}${r.tenant ? ` in tenant ${r.tenant}` : ''}; every node learns it within seconds\n`,
      );
    });

  op.command('ls')
    .description('operator keys this node knows')
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) => {
      const rows = (await agentOf(cmd).call('operator.list')) as KeyRow[];
      if (wantsJson(cmd)) return printJson(rows);
      printTable(
        ['kid', 'role', 'tenant', 'exec', 'shell', 'state', 'expires', 'source'],
        rows.map((k) => [
          k.kid,
          k.role,
          k.tenant,
          k.exec ? 'yes' : 'no',
          k.shell || k.role === 'admin' ? 'yes' : 'no',
          k.state,
          k.expiresAt ? new Date(k.expiresAt).toISOString() : 'never',
          k.source,
        ]),
      );
    });

  op.command('revoke')
    .description('revoke an operator key on every node')
    .argument('<kid>', 'key id (see plexus operator ls)')
    .option('--json', 'print JSON')
    .action(async (kid: string, _opts, cmd: Command) => {
      let args: Record<string, unknown> = { kid };
      if (remote()) {
        const { signRevocation } = await import('../mesh/records.ts');
        args = {
          revocation: signRevocation(
            { kind: 'operator', subject: kid, at: Date.now() },
            await remoteAdmin(cmd),
          ),
        };
      }
      const r = (await agentOf(cmd).call('operator.revoke', args)) as { kid: string; already: boolean };
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(
        `${r.already ? 'already revoked' : 'revoked'} ${r.kid}; every node refuses it from now on\n`,
      );
    });

  program
    .command('audit')
    .description('signed commands this node accepted, refused or relayed')
    .option('-n, --lines <n>', 'how many entries', '50')
    .option('--id <id>', 'only this command id')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const limit = Number(opts.lines);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
        throw new UsageError('-n must be 1..10000');
      const rows = (await agentOf(cmd).call('audit.list', { limit, id: opts.id })) as AuditRow[];
      if (wantsJson(cmd)) return printJson(rows);
      if (rows.length === 0) {
        process.stdout.write('no commands yet\n');
        return;
      }
      // COUNT: refusals from one source with one code within a minute share a row; its time is
      // the first of them, and `last` says when the latest came (docs/commands.md).
      printTable(
        ['time', 'verdict', 'code', 'count', 'action', 'kid', 'id', 'via', 'source', 'outcome'],
        rows.map((r) => [
          `${new Date(r.at).toISOString()} (${ago(r.at)})`,
          r.verdict,
          r.code,
          (r.count ?? 1) > 1 && r.lastAt ? `${r.count} (last ${ago(r.lastAt)})` : String(r.count ?? 1),
          r.action,
          r.kid,
          r.id,
          r.via,
          r.source,
          r.outcome,
        ]),
      );
    });
}
