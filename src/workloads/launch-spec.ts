/**
 * What a process of a release is started with. The environment is built from scratch on every
 * start, so a variable removed with `env unset` is really gone after the next restart.
 */
import type { AppUser } from './app-users.ts';
import type { LaunchSpec } from './backend.ts';
import type { ReleaseRow } from './release-repo.ts';
import { type AppPaths, releaseDir } from './releases.ts';

/**
 * Variables copied from the agent's environment: what a program needs to find itself, no more.
 * HOME, USER and LOGNAME are the app's own (its data folder and its user), not the agent's.
 */
export const INHERITED_ENV = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'SHELL', 'TMPDIR'];

/**
 * The launch spec of `rel`: inherited basics, the app's HOME (its data folder, also in
 * `PLEXUS_APP_DATA`) and user names, then the bundle's env, `PORT`, `PLEXUS_APP` and
 * `PLEXUS_RELEASE`, then the app's (decrypted) env vars on top, then `PORT`: `livePort`, the
 * private port the release listens on behind the kernel redirect, when given; else the declared port.
 */
export function buildLaunchSpec(
  app: string,
  rel: ReleaseRow,
  paths: AppPaths,
  secrets: Record<string, string>,
  inherit: string[] = INHERITED_ENV,
  user?: AppUser,
  capabilities: string[] = [],
  livePort?: number,
): LaunchSpec {
  const env: Record<string, string> = {};
  for (const k of inherit) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  env.HOME = paths.data;
  env.PLEXUS_APP_DATA = paths.data;
  const name = user?.name ?? process.env.USER;
  if (name) {
    env.USER = name;
    env.LOGNAME = name;
  }
  Object.assign(env, rel.spec.env);
  env.PLEXUS_APP = app;
  env.PLEXUS_RELEASE = rel.id;
  Object.assign(env, secrets);
  // Last, over an env var of that name: the release's private port when the kernel redirect
  // holds the declared one (issue 18); an app listening elsewhere would never get traffic.
  if (rel.spec.port) env.PORT = String(livePort ?? rel.spec.port);
  return {
    app,
    release: rel.id,
    cwd: releaseDir(paths, rel.id),
    cmd: rel.spec.cmd,
    env,
    restart: rel.spec.restart,
    logFile: paths.log,
    appDir: paths.root,
    ...(user ? { user } : {}),
    ...(capabilities.length ? { capabilities } : {}),
    ...(rel.spec.port && livePort ? { instance: String(livePort) } : {}),
  };
}

/**
 * The script `/bin/sh -c` runs for `cmd`. A simple command is `exec`-ed, so the app itself is the
 * supervised pid and gets signals directly; a compound one (`cd web && node x`, pipes, `;`) runs
 * under the shell, which is still the process-group leader every signal goes to.
 */
export function shellScript(cmd: string): string {
  if (/[;&|\n`()<>]|\$\(/.test(cmd)) return cmd;
  const m = /^((?:[A-Za-z_][A-Za-z0-9_]*=[^\s'"]*\s+)*)(.*)$/s.exec(cmd.trim())!;
  if (/^(cd|exec|if|for|while|case|\.|source|eval)\b/.test(m[2])) return cmd;
  return `${m[1]}exec ${m[2]}`;
}

/**
 * How the process backend spawns `spec`: the program, its arguments, and the ids Node's spawn
 * sets. As the app's own user (issue 13): Node's spawn sets the
 * uid and gid, and libuv's child calls setgroups(0, NULL) first, so the agent's supplementary
 * groups (root's) are dropped too (the isolation test checks /proc/PID/status). An app given
 * capabilities goes through util-linux's `setpriv`, which keeps just those across the change of
 * uid (as ambient capabilities) and drops every other from the bounding set.
 */
export function spawnCommand(spec: LaunchSpec): [string, string[], { uid?: number; gid?: number }] {
  const sh = ['-c', shellScript(spec.cmd)];
  const user = spec.user && spec.user.uid !== process.getuid?.() ? spec.user : undefined;
  if (!user) return ['/bin/sh', sh, {}];
  const caps = spec.capabilities ?? [];
  if (!caps.length) return ['/bin/sh', sh, { uid: user.uid, gid: user.gid }];
  const set = `-all,${caps.map((c) => `+${c.toLowerCase()}`).join(',')}`;
  const ids = [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'];
  const keep = [`--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`];
  return ['setpriv', [...ids, ...keep, '--', '/bin/sh', ...sh], {}];
}
