/**
 * Hardened systemd units for apps (issues 3 and 13). The app runs as its own user with no
 * capabilities, sees nothing of the agent's data dir but its own folder (an empty read-only
 * tmpfs over DATA, with the app's folder bound back in), cannot see other users' processes
 * (the agent's included), gets a private /tmp and /dev, cannot gain privileges, and makes only
 * the system calls of an ordinary service. Its env (secrets included) comes from a 0600 file
 * under /run, a tmpfs, which the app itself cannot open. `systemd-analyze security` rates such
 * a unit "OK" (the e2e test prints the figure).
 */
import { dirname } from 'node:path';
import type { LaunchSpec } from './backend.ts';
import { shellScript } from './launch-spec.ts';

/** Where the runtime env files live (tmpfs). */
export const SYSTEMD_RUN_DIR = '/run/plexus';
/** Where units are written. */
export const SYSTEMD_UNIT_DIR = '/etc/systemd/system';

/**
 * The unit name of an app's process: `plexus-app-APP.service`, or `plexus-app-APP.PORT.service`
 * for a release behind the kernel redirect (issue 18), whose `instance` is its private port, so two
 * releases of the app run side by side during a deploy. An app name has no dot, so the two forms
 * never meet.
 */
export function unitName(app: string, instance?: string): string {
  return instance ? `plexus-app-${app}.${instance}.service` : `plexus-app-${app}.service`;
}

/** Whether `file` is the unit of one of `app`'s processes (either form of `unitName`). */
export function isUnitOf(app: string, file: string): boolean {
  return file === unitName(app) || new RegExp(`^plexus-app-${app}\\.\\d{1,5}\\.service$`).test(file);
}

/** The env file of an app's process (per instance, as its unit). */
export function envFilePath(app: string, runDir = SYSTEMD_RUN_DIR, instance?: string): string {
  return instance ? `${runDir}/${app}.${instance}.env` : `${runDir}/${app}.env`;
}

/** Options of a unit. */
export interface UnitOptions {
  /** Env file path (default under /run/plexus). */
  envFile?: string;
  /** systemd version, to use newer settings only where they exist. */
  systemdVersion?: number;
  /** Seconds between SIGTERM and SIGKILL. */
  stopGraceS?: number;
}

/** Renders the unit file text for `spec`. */
export function renderUnit(spec: LaunchSpec, opts: UnitOptions = {}): string {
  const restart = { always: 'always', 'on-failure': 'on-failure', never: 'no' }[spec.restart];
  const lines = [
    '# Written by plexus; changes are overwritten on the next deploy.',
    '[Unit]',
    `Description=plexus app ${spec.app} (release ${spec.release})`,
    'After=network-online.target',
    'Wants=network-online.target',
    // Crash-loop limit: 10 starts in 60 s and systemd gives up (the unit is "failed").
    'StartLimitIntervalSec=60',
    'StartLimitBurst=10',
    '',
    '[Service]',
    'Type=simple',
    `WorkingDirectory=${quotePath(spec.cwd)}`,
    `ExecStart=/bin/sh -c ${quoteArg(shellScript(spec.cmd))}`,
    `EnvironmentFile=${quotePath(opts.envFile ?? envFilePath(spec.app, SYSTEMD_RUN_DIR, spec.instance))}`,
    `Restart=${restart}`,
    'RestartSec=100ms',
  ];
  // RestartSteps/RestartMaxDelaySec (exponential backoff) arrived in systemd 254.
  if ((opts.systemdVersion ?? 0) >= 254) lines.push('RestartSteps=8', 'RestartMaxDelaySec=15s');
  const dataDir = dirname(dirname(spec.appDir));
  const caps = (spec.capabilities ?? []).map((c) => `CAP_${c}`).join(' ');
  const runDir = dirname(opts.envFile ?? envFilePath(spec.app));
  if (spec.user && spec.user.uid !== 0) lines.push(`User=${spec.user.name}`, `Group=${spec.user.gid}`);
  // ProtectProc= and ProcSubset= arrived in systemd 247 (Debian 11 has 247).
  if ((opts.systemdVersion ?? 999) >= 247) lines.push('ProtectProc=invisible', 'ProcSubset=pid');
  lines.push(
    'KillMode=control-group',
    `TimeoutStopSec=${opts.stopGraceS ?? 10}`,
    // Nothing of the agent's data dir but the app's own folder: keys, plexus.db, plexus.sock,
    // the agent's log and the other apps are not even there (permissions also keep them out).
    `TemporaryFileSystem=${quotePath(dataDir)}:ro`,
    `BindPaths=${quotePath(spec.appDir)}`,
    // The env files of every app (secrets), here and in any other mount the app could reach.
    `InaccessiblePaths=-${quotePath(runDir)}`,
    // Empty unless an admin gave the app some (`deploy --cap`): then those, and only those.
    `CapabilityBoundingSet=${caps}`,
    `AmbientCapabilities=${caps}`,
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'PrivateMounts=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictSUIDSGID=yes',
    'RestrictRealtime=yes',
    'RestrictNamespaces=yes',
    'LockPersonality=yes',
    'RemoveIPC=yes',
    'KeyringMode=private',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    'SystemCallFilter=~@privileged',
    'SystemCallErrorNumber=EPERM',
    // No MemoryDenyWriteExecute: JIT runtimes (Node, the JVM, LuaJIT) need W+X pages.
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
    'UMask=0077',
    'StandardOutput=journal',
    'StandardError=journal',
    `SyslogIdentifier=plexus-${spec.app}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  );
  return lines.join('\n');
}

/** The env file text: one `NAME="value"` per line, escaped for systemd's parser. */
export function renderEnvFile(env: Record<string, string>): string {
  return Object.entries(env)
    .map(
      ([k, v]) =>
        `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\$/g, '\\$')}"`,
    )
    .join('\n')
    .concat('\n');
}

/** Quotes one ExecStart argument (systemd's own quoting rules; `%` and `$` escaped). */
function quoteArg(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$').replace(/\n/g, ' ')}"`;
}

/** Paths with spaces are fine in these settings; `%` must be doubled for specifier expansion. */
function quotePath(p: string): string {
  return p.replace(/%/g, '%%');
}
