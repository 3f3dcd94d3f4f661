/**
 * Where a release install puts things (docs/install.md):
 *
 *   PREFIX/releases/VERSION/   one unpacked release each (bin/, src/, dist/, node_modules/, .tools/)
 *   PREFIX/current             symlink to the release in use, switched atomically
 *   PREFIX/previous            symlink to the one before it (`plexus upgrade --rollback`)
 *   ETC/config.yaml            the agent's configuration (PLEXUS_CONFIG in the unit)
 *   ETC/release.pub            the trusted release key: upgrades must be signed by it
 *   DATA                       keys, database, logs, apps (the unit's StateDirectory)
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_DATA, DEFAULT_ETC, DEFAULT_PREFIX, UNIT_NAME } from './constants.ts';
import { ReleaseRefusedError } from './errors.ts';

/** Every path an install writes, in one place. */
export interface InstallLayout {
  prefix: string;
  releases: string;
  current: string;
  previous: string;
  etc: string;
  config: string;
  releaseKey: string;
  data: string;
  unit: string;
  binLink: string;
  man: string;
  completions: { bash: string; zsh: string; fish: string };
}

/** The layout for a prefix, etc dir and data dir (defaults: /opt/plexus, /etc/plexus, /var/lib/plexus). */
export function installLayout(o: { prefix?: string; etc?: string; data?: string } = {}): InstallLayout {
  const prefix = resolve(o.prefix ?? DEFAULT_PREFIX);
  const etc = resolve(o.etc ?? DEFAULT_ETC);
  return {
    prefix,
    releases: join(prefix, 'releases'),
    current: join(prefix, 'current'),
    previous: join(prefix, 'previous'),
    etc,
    config: join(etc, 'config.yaml'),
    releaseKey: join(etc, 'release.pub'),
    data: resolve(o.data ?? DEFAULT_DATA),
    unit: `/etc/systemd/system/${UNIT_NAME}`,
    binLink: '/usr/local/bin/plexus',
    man: '/usr/local/share/man/man1/plexus.1',
    completions: {
      bash: '/usr/share/bash-completion/completions/plexus',
      zsh: '/usr/share/zsh/vendor-completions/_plexus',
      fish: '/usr/share/fish/vendor_completions.d/plexus.fish',
    },
  };
}

/** What a release says it is: its RELEASE file, written by scripts/release. */
export interface ReleaseManifest {
  name: 'plexus';
  version: string;
  os: string;
  arch: string;
  node: string;
  commit: string;
}

/** A version as scripts/release accepts it; it becomes a folder name, so nothing else passes. */
export const VERSION_RE = /^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]{1,40})?$/;

/** Parses and checks a RELEASE file's text. */
export function parseManifest(text: string, source: string): ReleaseManifest {
  let m: ReleaseManifest;
  try {
    if (text.length > 4096) throw new Error('too large');
    m = JSON.parse(text) as ReleaseManifest;
  } catch {
    throw new ReleaseRefusedError('ARCHIVE_INVALID', `${source}: RELEASE is not a plexus release manifest`);
  }
  if (m?.name !== 'plexus' || typeof m.version !== 'string' || !VERSION_RE.test(m.version)) {
    throw new ReleaseRefusedError('ARCHIVE_INVALID', `${source}: RELEASE names no valid plexus version`);
  }
  return m;
}

/** Refuses a release built for another OS or CPU than this one. */
export function checkPlatform(m: ReleaseManifest, source: string): void {
  if (m.os !== process.platform || m.arch !== process.arch) {
    throw new ReleaseRefusedError(
      'WRONG_ARCH',
      `${source} is built for ${m.os}-${m.arch}, this host is ${process.platform}-${process.arch}`,
    );
  }
}

/** The manifest of an unpacked release folder. */
export function readManifest(dir: string): ReleaseManifest {
  let text: string;
  try {
    text = readFileSync(join(dir, 'RELEASE'), 'utf8');
  } catch {
    throw new ReleaseRefusedError('ARCHIVE_INVALID', `${dir} holds no RELEASE file: not a plexus release`);
  }
  return parseManifest(text, dir);
}
