/**
 * `install.sh` / `plexus install`: the steps that put an unpacked release in place and run it as
 * a service (docs/install.md). Every step checks first, so a second run changes nothing.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UNIT_NAME } from './constants.ts';
import type { InstallLayout, ReleaseManifest } from './layout.ts';
import { parseReleasePublicKey } from './release-signature.ts';
import { commandStep, fileStep, linkStep, type Step, statusOf } from './steps.ts';
import { startSupervisorStep } from './supervisor.ts';

/** What to do with the node's identity: make a new network, join one, or keep what DATA holds. */
export interface InstallOptions {
  init?: string;
  token?: string;
  /** This node's name when joining (init names it with `init`). */
  name?: string;
  /** Extra tags for `init`/`join`. */
  tags?: string[];
  /** Passed on to `init`/`join`: mesh listen addresses, the API's and the SOCKS proxy's. */
  listen?: string[];
  api?: string;
  socks?: string;
  /** Passed on to `join`: the node sits behind NAT and is reached through relays. */
  behindNat?: boolean;
  /**
   * What runs the agent: the systemd unit, or packaging/supervisor/plexus-supervise where the
   * host has no systemd (supervisor.ts). Default: systemd.
   */
  service?: 'systemd' | 'supervisor';
}

/** The unit as installed: the packaged one, run from `current`, with the config in ETC. */
export function unitFor(release: string, layout: InstallLayout): string {
  const packaged = readFileSync(join(release, 'packaging', 'systemd', UNIT_NAME), 'utf8');
  return packaged.replace(
    /^ExecStart=.*$/m,
    `Environment=PLEXUS_CONFIG=${layout.config}\nExecStart=${layout.current}/bin/plexus agent --data-dir ${layout.data}`,
  );
}

/** Copies the release folder into releases/VERSION, unless it already is there. */
function copyReleaseStep(release: string, layout: InstallLayout, m: ReleaseManifest): Step {
  const dest = join(layout.releases, m.version);
  const same = () => {
    try {
      return (
        realpathSync(release) === realpathSync(dest) ||
        readFileSync(join(dest, 'RELEASE'), 'utf8') === readFileSync(join(release, 'RELEASE'), 'utf8')
      );
    } catch {
      return false;
    }
  };
  const tmp = join(layout.releases, `.${m.version}.partial-${process.pid}`);
  return {
    describe: `copy ${release} to ${dest}`,
    needed: () => !same(),
    apply: () => {
      commandStep(['mkdir', '-p', layout.releases]).apply();
      commandStep(['rm', '-rf', tmp, dest]).apply();
      commandStep(['cp', '-a', release, tmp]).apply();
      commandStep(['mv', '-T', tmp, dest]).apply();
    },
  };
}

/** The install steps for the unpacked release in `release`. */
export function installSteps(
  release: string,
  m: ReleaseManifest,
  layout: InstallLayout,
  o: InstallOptions,
): Step[] {
  const cur = layout.current;
  const steps: Step[] = [
    copyReleaseStep(release, layout, m),
    // The first install names its version current; later ones go through `plexus upgrade`.
    { ...linkStep(cur, join('releases', m.version)), needed: () => !existsSync(cur) },
    linkStep(layout.binLink, join(cur, 'bin', 'plexus')),
    fileStep(layout.man, readFileSync(join(release, 'share', 'man', 'man1', 'plexus.1'))),
    ...(['bash', 'zsh', 'fish'] as const).map((sh) =>
      fileStep(layout.completions[sh], readFileSync(join(release, 'share', 'completions', `plexus.${sh}`))),
    ),
  ];
  // Trust on first install: the release key this release was signed with. An existing one stays.
  const pub = join(release, 'release.pub');
  if (existsSync(pub)) {
    const text = readFileSync(pub, 'utf8');
    parseReleasePublicKey(text, pub);
    steps.push({ ...fileStep(layout.releaseKey, text), needed: () => !existsSync(layout.releaseKey) });
  }
  const plexus = [join(cur, 'bin', 'plexus')];
  const env = { ...process.env, PLEXUS_CONFIG: layout.config };
  const tags = [
    ...(o.tags?.length ? ['--tags', o.tags.join(',')] : []),
    ...(o.listen ?? []).flatMap((l) => ['--listen', l]),
    ...(o.api ? ['--api', o.api] : []),
    ...(o.socks ? ['--socks', o.socks] : []),
  ];
  const fresh = () => !existsSync(join(layout.data, 'keys', 'node.key'));
  steps.push(commandStep(['mkdir', '-p', '-m', '0755', layout.etc], () => !existsSync(layout.etc)));
  if (o.init) {
    steps.push(
      commandStep([...plexus, 'init', '--name', o.init, ...tags, '--data-dir', layout.data], fresh, env),
    );
  } else if (o.token) {
    const name = ['--name', o.name ?? hostname().split('.')[0], ...(o.behindNat ? ['--behind-nat'] : [])];
    const join_ = commandStep(
      [...plexus, 'join', o.token, ...name, ...tags, '--data-dir', layout.data],
      fresh,
      env,
    );
    // The token is a secret: never printed.
    steps.push({
      ...join_,
      describe: `run ${plexus[0]} join <token> ${[...name, ...tags].join(' ')} --data-dir ${layout.data}`,
    });
  }
  if (o.service === 'supervisor') {
    steps.push(startSupervisorStep(layout, env));
    return steps;
  }
  const unit = fileStep(layout.unit, unitFor(release, layout));
  const unitChanged = unit.needed();
  steps.push(
    unit,
    commandStep(['systemctl', 'daemon-reload'], () => unitChanged),
    commandStep(
      ['systemctl', 'enable', UNIT_NAME],
      () => statusOf(['systemctl', 'is-enabled', '--quiet', UNIT_NAME]) !== 0,
    ),
    commandStep(
      ['systemctl', 'restart', UNIT_NAME],
      () => unitChanged || statusOf(['systemctl', 'is-active', '--quiet', UNIT_NAME]) !== 0,
    ),
  );
  return steps;
}
