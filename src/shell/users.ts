/**
 * Who a session runs as (issue 16): `--user U`, or the node's `shell.user`; root only for an
 * admin key that names it. The default user is created on first use, a login user of its own
 * with a home under DATA. A session process drops to the user through `setpriv` (util-linux), which
 * also sets the user's supplementary groups (`--init-groups`): node-pty's own uid/gid switch
 * would keep the agent's groups, root's among them. An agent that is not root cannot switch
 * users; its sessions run as itself.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CannotSwitchUserError,
  NoLoginShellError,
  RootShellDeniedError,
  ShellUserSetupError,
  UnknownShellUserError,
} from './errors.ts';

const execFileP = promisify(execFile);

/** A user name `useradd` and every tool accept. */
export const SESSION_USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/** A user as a session needs it. */
export interface SessionUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/** How to find, and where to create, users. */
export interface UserPolicy {
  /** `shell.user`: whom a session runs as when the caller names nobody. */
  defaultUser: string;
  /** Where the default user's home is made when the agent creates it. */
  homeBase: string;
}

/** Looks a user up with `getent` (local files, LDAP or any NSS source). */
export async function lookupSessionUser(name: string): Promise<SessionUser | undefined> {
  if (!SESSION_USER_RE.test(name)) return undefined;
  try {
    const { stdout } = await execFileP('getent', ['passwd', name], { timeout: 10_000 });
    const f = stdout.trim().split(':');
    if (f[0] !== name || f.length < 7) return undefined;
    return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5], shell: f[6] };
  } catch {
    return undefined; // getent exits 2 for an unknown name
  }
}

/** True when the agent may start processes as other users. */
export function canSwitchUsers(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The user a session runs as. `requested` is the caller's `--user`; `admin` whether its key is
 * an admin's. Refuses root to everyone else, whatever name maps to uid 0.
 */
export async function resolveSessionUser(
  requested: string | undefined,
  admin: boolean,
  policy: UserPolicy,
): Promise<SessionUser> {
  if (!canSwitchUsers()) {
    const self = userInfo();
    if (requested && requested !== self.username) throw new CannotSwitchUserError(requested, self.username);
    return {
      name: self.username,
      uid: self.uid,
      gid: self.gid,
      home: self.homedir,
      shell: self.shell ?? '/bin/sh',
    };
  }
  const name = requested ?? policy.defaultUser;
  let user = await lookupSessionUser(name);
  if (!user && !requested) user = await createDefaultUser(name, policy.homeBase);
  if (!user) throw new UnknownShellUserError(name);
  if (user.uid === 0 && !(admin && requested)) throw new RootShellDeniedError(name);
  return user;
}

/** Creates the default shell user: a login user, its own group, a home under DATA. */
async function createDefaultUser(name: string, homeBase: string): Promise<SessionUser> {
  const home = join(homeBase, name);
  try {
    mkdirSync(homeBase, { recursive: true });
    // Passable, not listable: the agent's umask (077) would make it 0700 and lock the user out.
    chmodSync(homeBase, 0o711);
    await execFileP(
      'useradd',
      [
        '--system',
        '--user-group',
        '--create-home',
        '--home-dir',
        home,
        '--shell',
        '/bin/bash',
        '--comment',
        'plexus shell',
        name,
      ],
      { timeout: 30_000 },
    );
  } catch (err) {
    // Another session may have created it at the same time.
    const raced = await lookupSessionUser(name);
    if (raced) return raced;
    throw new ShellUserSetupError(name, (err as Error).message.split('\n')[0]);
  }
  const user = await lookupSessionUser(name);
  if (!user) throw new ShellUserSetupError(name, 'useradd succeeded but the user is not found');
  return user;
}

/**
 * The argv that runs `argv` as `user`: through setpriv when the agent switches users, and with
 * the umask of a fresh login (022, as sshd gives) rather than the agent's private 077.
 */
export function asUser(user: SessionUser, argv: string[]): string[] {
  const withUmask = ['/bin/sh', '-c', 'umask 022 && exec "$@"', 'sh', ...argv];
  if (!canSwitchUsers() || user.uid === process.getuid?.()) return withUmask;
  return ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', ...withUmask];
}

/**
 * The command of a session: the user's login shell (as a login shell, `-l`) when the caller
 * named none. A user whose shell refuses logins gets a clear error instead of an instant exit.
 */
export function sessionArgv(user: SessionUser, cmd: string[] | undefined): string[] {
  if (cmd && cmd.length > 0) return cmd;
  if (!user.shell || /(nologin|\/false)$/.test(user.shell))
    throw new NoLoginShellError(user.name, user.shell);
  return [user.shell, '-l'];
}

/** The environment of a session: a fresh login's, never the agent's (which may hold secrets). */
export function sessionEnv(user: SessionUser, term: string | undefined): Record<string, string> {
  const env: Record<string, string> = {
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    SHELL: user.shell,
    PATH:
      user.uid === 0
        ? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
        : '/usr/local/bin:/usr/bin:/bin',
    LANG: process.env.LANG ?? 'C.UTF-8',
  };
  if (term) env.TERM = term;
  return env;
}

/** The session's working directory: the user's home when it exists. */
export function sessionCwd(user: SessionUser): string {
  return user.home && existsSync(user.home) ? user.home : '/';
}
