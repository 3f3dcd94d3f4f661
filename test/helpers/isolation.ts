/**
 * The isolation check of issue 13, shared by the process backend (in the test's own process) and
 * the systemd backend (run inside a booted systemd-nspawn container, see nspawn.ts):
 *
 * - builds a data dir as an agent has it: keys/{admin,node,master}.key, config.yaml, plexus.db,
 *   a listening plexus.sock, logs/agent.log;
 * - deploys an app `other`, then the hostile fixture (test/fixtures/workloads/hostile), which
 *   tries to read the keys and the database, connect to the socket, write into `other`'s
 *   folders, signal the agent and read its memory, and prints what each attempt gave;
 * - returns that report, with what the agent saw (socket connections, files left in `other`).
 *
 * Run as a script it prints the report as one JSON line:
 *   node test/helpers/isolation.ts --backend systemd --data /var/lib/plexus-iso
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseStampedLine } from '../../src/core/log-stamp.ts';
import { silentLogger } from '../../src/logging/index.ts';
import { openStore } from '../../src/store/index.ts';
import {
  createProcessBackend,
  createSystemdBackend,
  Workloads,
  workloadsMigrations,
} from '../../src/workloads/index.ts';
import { tarGzDir } from './archives.ts';

const HOSTILE = resolve(import.meta.dirname, '..', 'fixtures', 'workloads', 'hostile');

/** The attempts of the hostile app that must all fail (names as it reports them). */
export const DENIED_ATTEMPTS = [
  'readAdminKey',
  'readNodeKey',
  'listKeys',
  'readDb',
  'readAgentLog',
  'readConfig',
  'connectSocket',
  'writeOtherData',
  'writeOtherRelease',
  'readOtherRelease',
  'appendOtherLog',
  'killAgent',
  'readAgentEnviron',
  'readAgentMem',
] as const;

/** What the hostile app reported, and what the agent saw. */
export interface IsolationReport {
  /** Each attempt's outcome (`ok` or an error code), plus uid, gid, groups, capabilities. */
  app: Record<string, string | number>;
  /** Connections the control socket accepted while the app ran. */
  socketConnections: number;
  /** Files the hostile app managed to leave in the other app's folders. */
  plantedInOther: string[];
  /** The hostile app's status after its deploy. */
  status: string;
  /** systemd backend: per app unit, `systemd-analyze verify` output and the security exposure. */
  analyze: Record<string, { verify: string; exposure: number | null; rating: string; table: string }>;
}

/** Deploys the hostile app next to another one in a fresh data dir `dataDir`; see the file comment. */
export async function runIsolation(
  backend: 'process' | 'systemd',
  dataDir: string,
): Promise<IsolationReport> {
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
  mkdirSync(join(dataDir, 'logs'), { mode: 0o700 });
  for (const k of ['admin.key', 'node.key', 'master.key'])
    writeFileSync(join(dataDir, 'keys', k), randomBytes(32), { mode: 0o600 });
  // A data dir from before issue 13 may hold readable files: the agent must close them.
  writeFileSync(join(dataDir, 'config.yaml'), 'workloads: {}\n', { mode: 0o644 });
  chmodSync(join(dataDir, 'config.yaml'), 0o644);
  writeFileSync(join(dataDir, 'logs', 'agent.log'), '{"msg":"agent log"}\n', { mode: 0o600 });
  const db = openStore(join(dataDir, 'plexus.db'), workloadsMigrations);
  let socketConnections = 0;
  const sock = createServer((c) => {
    socketConnections++;
    c.destroy();
  });
  const sockPath = join(dataDir, 'plexus.sock');
  await new Promise<void>((r) => sock.listen(sockPath, r));
  chmodSync(sockPath, 0o600);
  const logger = silentLogger();
  const w = new Workloads(
    { appsDir: join(dataDir, 'apps'), healthTimeoutMs: 20_000, stopGraceMs: 2_000 },
    {
      db,
      logger,
      backend:
        backend === 'systemd'
          ? createSystemdBackend({ pollMs: 200 }, { logger })
          : createProcessBackend({ stopGraceMs: 2_000 }, { logger }),
      masterKey: randomBytes(32),
    },
  );
  await w.start();
  try {
    const bundle = await tarGzDir(HOSTILE);
    const upload = async function* () {
      yield { chunk: bundle.toString('base64') };
      yield { end: true };
    };
    await w.deploy({
      app: 'other',
      source: { kind: 'upload', input: upload() },
      flags: { cmd: 'sleep 600', restart: 'always' },
    });
    const otherDir = w.paths('other').root;
    // (Its data folder exists already where apps have users; the test also runs on older code.)
    mkdirSync(join(otherDir, 'data'), { recursive: true });
    writeFileSync(join(otherDir, 'data', 'state'), 'other app state');
    const before = new Set(listAll(otherDir));
    const deployed = await w.deploy({
      app: 'pwn',
      source: { kind: 'upload', input: upload() },
      flags: { cmd: 'node hostile.cjs', restart: 'never' },
      env: { AGENT_DATA: dataDir, AGENT_PID: String(process.pid), OTHER_APP: otherDir },
    });
    let line: string | undefined;
    for (let i = 0; i < 100 && !line; i++) {
      line = (await w.tail('pwn', 50))
        .map((l) => parseStampedLine(l).text)
        .find((l) => l.startsWith('ISOLATION '));
      if (!line) await new Promise((r) => setTimeout(r, 100));
    }
    if (!line) throw new Error(`the hostile app printed no report: ${(await w.tail('pwn', 20)).join(' | ')}`);
    const analyze: IsolationReport['analyze'] = {};
    if (backend === 'systemd')
      for (const a of ['pwn', 'other']) analyze[a] = analyzeUnit(`plexus-app-${a}.service`);
    return {
      app: JSON.parse(line.slice('ISOLATION '.length)),
      socketConnections,
      plantedInOther: listAll(otherDir).filter((f) => !before.has(f) && f.includes('pwned')),
      status: deployed.status,
      analyze,
    };
  } finally {
    for (const a of ['pwn', 'other']) await w.removeApp(a).catch(() => {});
    await w.stop();
    sock.close();
    db.close();
  }
}

/** `systemd-analyze verify` and `security` of an installed unit (inside a running systemd). */
function analyzeUnit(unit: string) {
  const run = (args: string[]) => {
    const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', timeout: 60_000 });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  };
  const verify = run(['verify', `/etc/systemd/system/${unit}`]);
  const table = run(['security', '--no-pager', unit]);
  const m = /Overall exposure level for \S+: ([0-9.]+) (\S+)/.exec(table);
  return { verify, exposure: m ? Number(m[1]) : null, rating: m?.[2] ?? '?', table };
}

function listAll(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { backend: { type: 'string' }, data: { type: 'string' } } });
  const report = await runIsolation(values.backend === 'systemd' ? 'systemd' : 'process', values.data!);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}
