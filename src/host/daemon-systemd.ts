/**
 * Host daemons under systemd (when it is PID 1): the package's own unit, enabled and started;
 * where plexus needs another command line (Caddy with its admin socket instead of the Caddyfile)
 * a drop-in replaces ExecStart=, so the package's hardening and user stay as Debian ships them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { parseShow } from '../workloads/systemd-backend.ts';
import type { DaemonSpec, DaemonStatus } from './daemon-spec.ts';
import { HostDaemonError } from './errors.ts';

const execFileP = promisify(execFile);

/** Where unit drop-ins go. */
export const SYSTEMD_DROPIN_ROOT = '/etc/systemd/system';

/** True when systemd is PID 1 here (the same test systemd's own tools use). */
export function systemdIsInit(): boolean {
  return existsSync('/run/systemd/system');
}

/** The drop-in file of a unit. */
export function dropInPath(unit: string, root = SYSTEMD_DROPIN_ROOT): string {
  return `${root}/${unit}.d/plexus.conf`;
}

/**
 * The drop-in text: an empty ExecStart= clears the package's before ours is set. The package's
 * ExecReload= is cleared too: it would load the package's config (Caddy's Caddyfile, with its
 * admin API on TCP and without the agent's socket), which the agent could then not replace.
 */
export function renderDropIn(spec: DaemonSpec): string {
  const lines = ['# Written by plexus (plexus edge/service); removed with the service.', '[Service]'];
  if (spec.execStart)
    lines.push('ExecStart=', `ExecStart=${spec.execStart.replace(/%/g, '%%')}`, 'ExecReload=');
  for (const [k, v] of Object.entries(spec.env ?? {}))
    lines.push(`Environment="${k}=${v.replace(/["\\]/g, '\\$&')}"`);
  return `${lines.join('\n')}\n`;
}

async function systemctl(...args: string[]): Promise<string> {
  try {
    return (await execFileP('systemctl', args, { timeout: 60_000 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new HostDaemonError(
      'SYSTEMCTL_FAILED',
      `systemctl ${args.join(' ')} failed: ${(e.stderr || e.message).trim().split('\n')[0]}`,
    );
  }
}

/** Writes the drop-in (if any), then enables and (re)starts the unit. */
export async function systemdStart(spec: DaemonSpec): Promise<void> {
  if (spec.execStart || spec.env) {
    const path = dropInPath(spec.unit);
    await mkdir(path.slice(0, path.lastIndexOf('/')), { recursive: true });
    await writeFile(path, renderDropIn(spec), { mode: 0o644 });
  }
  await systemctl('daemon-reload');
  await systemctl('enable', spec.unit);
  await systemctl('restart', spec.unit);
}

/** Stops and disables the unit; `forget` also removes the drop-in. */
export async function systemdStop(spec: DaemonSpec, forget: boolean): Promise<void> {
  await systemctl('disable', '--now', spec.unit).catch(() => '');
  if (forget) {
    await rm(`${SYSTEMD_DROPIN_ROOT}/${spec.unit}.d`, { recursive: true, force: true });
    await systemctl('daemon-reload').catch(() => '');
  }
}

/** The unit's state, read as the workloads' systemd backend reads an app's unit. */
export async function systemdStatus(spec: DaemonSpec): Promise<DaemonStatus> {
  const out = await systemctl(
    'show',
    spec.unit,
    '-p',
    'MainPID,ActiveState,SubState,NRestarts,ExecMainStartTimestamp',
  ).catch(() => '');
  const s = parseShow(out);
  return {
    name: spec.name,
    state: out ? s.status : 'unknown',
    pid: s.pid,
    supervisor: 'systemd',
    restarts: s.restarts,
  };
}
