/**
 * `plexus uninstall`: stops and removes the service, the apps' units and users, and the
 * binaries. DATA stays with `--keep-data`; by default only its keys and logs stay (a reinstall
 * keeps the node's identity); `--purge` removes those and /etc/plexus too (docs/install.md).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UNIT_NAME } from './constants.ts';
import type { InstallLayout } from './layout.ts';
import { commandStep, removeStep, type Step, statusOf } from './steps.ts';
import { stopSupervisorStep, supervisorPid } from './supervisor.ts';

/** How much to remove. */
export interface UninstallOptions {
  keepData?: boolean;
  purge?: boolean;
  /** What runs the agent (supervisor.ts); default systemd. */
  service?: 'systemd' | 'supervisor';
}

/** The apps the agent runs, from DATA/apps. */
function appNames(layout: InstallLayout): string[] {
  try {
    return readdirSync(join(layout.data, 'apps')).filter((a) => /^[a-z0-9][a-z0-9-]{0,62}$/.test(a));
  } catch {
    return [];
  }
}

/**
 * Without systemd there is no cgroup to signal: the agent stops each app (while it still runs),
 * then the supervisor stops the agent.
 */
function supervisorStopSteps(layout: InstallLayout): Step[] {
  const plexus = join(layout.current, 'bin', 'plexus');
  const running = () => supervisorPid() !== undefined;
  return [
    ...appNames(layout).map((app) => commandStep([plexus, 'stop', app, '--data-dir', layout.data], running)),
    stopSupervisorStep(),
  ];
}

/** The users the agent made for apps (`plexus-app-*`), from /etc/passwd. */
function appUsers(): string[] {
  try {
    return readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .map((l) => l.split(':')[0])
      .filter((u) => u.startsWith('plexus-app-'));
  } catch {
    return [];
  }
}

/** The apps' units written by the systemd backend. */
function appUnits(): string[] {
  try {
    return readdirSync('/etc/systemd/system').filter((f) => /^plexus-app-.+\.service$/.test(f));
  } catch {
    return [];
  }
}

/** The uninstall steps, in the order they run. */
export function uninstallSteps(layout: InstallLayout, o: UninstallOptions): Step[] {
  const active = () => statusOf(['systemctl', 'is-active', '--quiet', UNIT_NAME]) === 0;
  const steps: Step[] =
    o.service === 'supervisor' ? supervisorStopSteps(layout) : systemdStopSteps(layout, active);
  for (const user of appUsers()) steps.push(commandStep(['userdel', user]));
  steps.push(
    removeStep(layout.binLink),
    removeStep(layout.man),
    ...Object.values(layout.completions).map(removeStep),
  );
  if (o.purge) {
    steps.push(removeStep(layout.data), removeStep(layout.etc));
  } else if (!o.keepData) {
    let entries: string[] = [];
    try {
      entries = readdirSync(layout.data);
    } catch {
      // nothing there
    }
    for (const e of entries.filter((x) => x !== 'keys' && x !== 'logs'))
      steps.push(removeStep(join(layout.data, e)));
  }
  // Last: the running CLI may itself be one of these files.
  steps.push(removeStep(layout.prefix));
  return steps;
}

/** The unit, the apps' units: the whole cgroup signalled first, then disabled and removed. */
function systemdStopSteps(layout: InstallLayout, active: () => boolean): Step[] {
  const steps: Step[] = [
    // Apps of the process backend live in the agent's cgroup and outlive a plain stop
    // (KillMode=process): signal the whole cgroup first.
    commandStep(['systemctl', 'kill', '--kill-whom=all', UNIT_NAME], active),
    commandStep(
      ['systemctl', 'disable', '--now', UNIT_NAME],
      () => statusOf(['systemctl', 'cat', UNIT_NAME]) === 0,
    ),
  ];
  for (const unit of appUnits()) {
    steps.push(
      commandStep(['systemctl', 'disable', '--now', unit]),
      removeStep(join('/etc/systemd/system', unit)),
    );
  }
  steps.push(removeStep(layout.unit), commandStep(['systemctl', 'daemon-reload']));
  return steps;
}
