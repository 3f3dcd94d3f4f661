/**
 * `plexus repair [--diagnose]`: checks an installed node and fixes what it safely can. Each check
 * reports ok, fixed or broken, and a broken one says what to do (docs/install.md). Checks that
 * need the running agent (clock skew, peers, relay) take what it answers from the caller.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, statfsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { loadConfig } from '../config/index.ts';
import { UNIT_NAME } from './constants.ts';
import type { InstallLayout } from './layout.ts';
import { statusOf } from './steps.ts';
import { SUPERVISOR_SCRIPT, serviceKind, supervisorPid } from './supervisor.ts';
import { pruneReleases } from './switch.ts';

/** One check's outcome. */
export interface CheckResult {
  check: string;
  status: 'ok' | 'fixed' | 'broken';
  detail: string;
}

/** What the running agent says, when it answers (node.status and mesh.peers). */
export interface AgentView {
  peersTotal: number;
  peersOnline: number;
  relayed: number;
  /** Peers' telemetry timestamps (ms) as received, with when they were read. */
  peerClocks: { name: string; ts: number }[];
  now: number;
}

/** Clock skew beyond this breaks admission deadlines and command expiry (docs/architecture.md). */
const MAX_SKEW_MS = 30_000;
/** Telemetry is sent every 5 s: a record is at most this old when the peer is online. */
const TELEMETRY_AGE_MS = 15_000;

const result = (check: string, status: CheckResult['status'], detail: string): CheckResult => ({
  check,
  status,
  detail,
});

function keyFiles(layout: InstallLayout, fix: boolean): CheckResult {
  const keys = join(layout.data, 'keys');
  if (!existsSync(join(keys, 'node.key'))) {
    return result(
      'keys',
      'broken',
      `no ${keys}/node.key: restore DATA from a backup, or join again (install.sh --token)`,
    );
  }
  const loose = [keys, ...readdirSync(keys).map((f) => join(keys, f))].filter(
    (p) => (statSync(p).mode & 0o077) !== 0,
  );
  if (!loose.length) return result('keys', 'ok', `${keys}: present, private to root`);
  if (!fix)
    return result(
      'keys',
      'broken',
      `readable by others: ${loose.join(', ')}; plexus repair makes them private`,
    );
  for (const p of loose) chmodSync(p, statSync(p).isDirectory() ? 0o700 : 0o600);
  return result('keys', 'fixed', `made private: ${loose.join(', ')}`);
}

function configParses(layout: InstallLayout): { r: CheckResult; ports: number[] } {
  try {
    const c = loadConfig(existsSync(layout.config) ? layout.config : join(layout.data, 'config.yaml'));
    const ports = [
      ...c.mesh.listen.map((a) => Number(/\/tcp\/(\d+)/.exec(a)?.[1] ?? 0)),
      ...[c.api.listen, c.socks.listen].map((l) => (l === 'off' ? 0 : Number(l.split(':').pop()))),
    ].filter((p) => p > 0);
    return { r: result('config', 'ok', 'parses and validates'), ports };
  } catch (err) {
    return { r: result('config', 'broken', `${(err as Error).message}`), ports: [] };
  }
}

async function dbIntegrity(layout: InstallLayout): Promise<CheckResult> {
  const path = join(layout.data, 'plexus.db');
  if (!existsSync(path))
    return result('database', 'broken', `no ${path}: start the agent once (systemctl start plexus)`);
  try {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path, { readonly: true, fileMustExist: true });
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    db.close();
    const bad = rows.map((r) => r.integrity_check).filter((x) => x !== 'ok');
    return bad.length
      ? result(
          'database',
          'broken',
          `integrity_check: ${bad.slice(0, 3).join('; ')}; stop the agent and restore plexus.db from a backup`,
        )
      : result('database', 'ok', 'integrity_check ok');
  } catch (err) {
    return result('database', 'broken', `cannot open ${path}: ${(err as Error).message}`);
  }
}

const portFree = (port: number) =>
  new Promise<boolean>((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '0.0.0.0', () => s.close(() => res(true)));
  });

async function ports(list: number[], agentAnswers: boolean): Promise<CheckResult> {
  const busy: number[] = [];
  for (const p of list) if (!(await portFree(p))) busy.push(p);
  if (!busy.length) return result('ports', 'ok', `${list.join(', ') || 'none configured'} free`);
  if (agentAnswers) return result('ports', 'ok', `${busy.join(', ')} held by the running agent`);
  return result(
    'ports',
    'broken',
    `${busy.join(', ')} in use while the agent is down: find the holder with 'ss -ltnp'`,
  );
}

function unit(fix: boolean): CheckResult {
  if (serviceKind() === 'supervisor') {
    // No systemd: the agent's service is plexus-supervise (supervisor.ts); nothing to enable.
    const pid = supervisorPid();
    return pid
      ? result('unit', 'ok', `no systemd: the agent runs under plexus-supervise (pid ${pid})`)
      : result(
          'unit',
          'broken',
          `no systemd and plexus-supervise is not running: start ${SUPERVISOR_SCRIPT} from current`,
        );
  }
  if (!existsSync(`/etc/systemd/system/${UNIT_NAME}`))
    return result('unit', 'broken', `${UNIT_NAME} is not installed: run install.sh from the release`);
  if (statusOf(['systemctl', 'is-enabled', '--quiet', UNIT_NAME]) === 0)
    return result('unit', 'ok', 'installed and enabled');
  if (!fix) return result('unit', 'broken', 'installed but not enabled: plexus repair enables it');
  execFileSync('systemctl', ['enable', UNIT_NAME], { stdio: 'ignore' });
  return result('unit', 'fixed', 'enabled');
}

function mesh(agent: AgentView | undefined): CheckResult[] {
  if (!agent)
    return [
      result(
        'agent',
        'broken',
        "the agent does not answer: 'systemctl status plexus', 'journalctl -u plexus'",
      ),
    ];
  const out = [result('agent', 'ok', 'answers on its socket')];
  const skews = agent.peerClocks
    .map((p) => ({ name: p.name, skew: p.ts - agent.now }))
    .filter((p) => p.skew > MAX_SKEW_MS || p.skew < -(MAX_SKEW_MS + TELEMETRY_AGE_MS));
  out.push(
    skews.length
      ? result(
          'clock',
          'broken',
          `clocks differ by more than ${MAX_SKEW_MS / 1000} s from ${skews.map((s) => `${s.name} (${Math.round(s.skew / 1000)} s)`).join(', ')}: run NTP (timedatectl set-ntp true)`,
        )
      : result('clock', 'ok', `within ${MAX_SKEW_MS / 1000} s of ${agent.peerClocks.length} peers`),
  );
  if (agent.peersTotal === 0) out.push(result('peers', 'ok', 'no other members'));
  else if (agent.peersOnline === 0)
    out.push(
      result(
        'peers',
        'broken',
        `none of ${agent.peersTotal} peers reachable: check the mesh port in the firewall and 'plexus peers'`,
      ),
    );
  else
    out.push(
      result(
        'peers',
        'ok',
        `${agent.peersOnline} of ${agent.peersTotal} online, ${agent.relayed} through a relay`,
      ),
    );
  return out;
}

function disk(layout: InstallLayout, fix: boolean): CheckResult {
  if (!existsSync(layout.releases))
    return result('disk', 'broken', `no ${layout.releases}: not installed from a release`);
  const free = () => {
    const s = statfsSync(layout.releases);
    return s.bavail * s.bsize;
  };
  // An upgrade unpacks ~250 MB beside the running release.
  const need = 300e6;
  if (free() >= need) return result('disk', 'ok', `${(free() / 1e9).toFixed(1)} GB free for releases`);
  if (fix && pruneReleases(layout).length && free() >= need)
    return result('disk', 'fixed', 'removed old releases');
  return result(
    'disk',
    'broken',
    `${(free() / 1e6).toFixed(0)} MB free in ${layout.releases}; an upgrade needs ${need / 1e6} MB`,
  );
}

/** Runs every check in order, fixing what it can unless `diagnose`. */
export async function repair(
  layout: InstallLayout,
  agent: AgentView | undefined,
  diagnose: boolean,
): Promise<CheckResult[]> {
  const fix = !diagnose;
  const cfg = configParses(layout);
  return [
    keyFiles(layout, fix),
    cfg.r,
    await dbIntegrity(layout),
    await ports(cfg.ports, agent !== undefined),
    unit(fix),
    ...mesh(agent),
    disk(layout, fix),
  ];
}
