/**
 * Hardened systemd units for apps (issue 3): the app may write only its own folder, gets a
 * private /tmp, cannot gain privileges, and reads its env (secrets included) from a 0600 file
 * under /run, which is a tmpfs, so plaintext never touches the disk.
 */
import type { LaunchSpec } from './backend.ts';
import { shellScript } from './launch-spec.ts';

/** Where the runtime env files live (tmpfs). */
export const SYSTEMD_RUN_DIR = '/run/plexus';
/** Where units are written. */
export const SYSTEMD_UNIT_DIR = '/etc/systemd/system';

/** The unit name of an app. */
export function unitName(app: string): string {
  return `plexus-app-${app}.service`;
}

/** The env file of an app. */
export function envFilePath(app: string, runDir = SYSTEMD_RUN_DIR): string {
  return `${runDir}/${app}.env`;
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
    `EnvironmentFile=${quotePath(opts.envFile ?? envFilePath(spec.app))}`,
    `Restart=${restart}`,
    'RestartSec=100ms',
  ];
  // RestartSteps/RestartMaxDelaySec (exponential backoff) arrived in systemd 254.
  if ((opts.systemdVersion ?? 0) >= 254) lines.push('RestartSteps=8', 'RestartMaxDelaySec=15s');
  lines.push(
    'KillMode=control-group',
    `TimeoutStopSec=${opts.stopGraceS ?? 10}`,
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
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
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
    'UMask=0077',
    `ReadWritePaths=${quotePath(spec.appDir)}`,
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
