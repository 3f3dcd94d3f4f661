/**
 * The Unix user an app runs as (issue 13): never the agent's own, which is root on a server.
 * By default each app gets a system user of its own, `plexus-app-NAME`, that the agent creates
 * with `useradd` (no home, no login shell, its own group); a deploy may name an existing user
 * instead, and root only with an admin's `--allow-root`. Both backends run the app as this user.
 * An agent that is not root cannot change uids: its apps run as its own user, as before.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { APP_USER_COMMENT, APP_USER_PREFIX, MAX_USER_NAME } from './constants.ts';
import { AppUserError } from './errors.ts';

const execFileP = promisify(execFile);

/** Who an app runs as. */
export interface AppUser {
  name: string;
  uid: number;
  gid: number;
}

/** A user name `useradd` and every tool accept: lower case, digits, `_` and `-`, up to 32. */
export const USER_NAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * The default user of `app`: `plexus-app-NAME`, or, when that passes Linux's 32-character limit,
 * the name's first 12 characters and 8 hex digits of its sha256, so that two long names that
 * share a beginning still get different users, and the same name always gets the same one.
 */
export function defaultUserName(app: string): string {
  const plain = `${APP_USER_PREFIX}${app}`;
  if (plain.length <= MAX_USER_NAME) return plain;
  const hash = createHash('sha256').update(app).digest('hex').slice(0, 8);
  return `${APP_USER_PREFIX}${app.slice(0, 12).replace(/-+$/, '')}-${hash}`;
}

/** True when this process may run apps as other users (it is root). */
export function canSwitchUsers(): boolean {
  return process.getuid?.() === 0;
}

interface PasswdEntry extends AppUser {
  comment: string;
}

/**
 * Looks a user up: /etc/passwd first (where `useradd` writes, and a read costs no process), then
 * `getent`, for users that come from LDAP or another NSS source. Undefined when there is none.
 */
export async function lookupUser(name: string): Promise<PasswdEntry | undefined> {
  if (!USER_NAME_RE.test(name)) return undefined;
  const local = passwdLine(readPasswd(), name);
  if (local) return local;
  try {
    const { stdout } = await execFileP('getent', ['passwd', name], { timeout: 10_000 });
    return passwdLine(stdout, name);
  } catch {
    return undefined; // getent exits 2 for an unknown name
  }
}

function readPasswd(): string {
  try {
    return readFileSync('/etc/passwd', 'utf8');
  } catch {
    return '';
  }
}

function passwdLine(text: string, name: string): PasswdEntry | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] !== name || f.length < 7) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
    return { name, uid, gid, comment: f[4] };
  }
  return undefined;
}

/**
 * The user `app` runs as: `name` when given (it must exist), else its default user, created when
 * missing. A default name held by a user plexus did not create is refused rather than reused:
 * the app would get that user's files and rights.
 */
export async function ensureAppUser(app: string, name?: string): Promise<AppUser> {
  if (name !== undefined) {
    const found = await lookupUser(name);
    if (!found)
      throw new AppUserError('UNKNOWN_USER', `no user '${name}' on this node; create it or leave out --user`);
    return { name, uid: found.uid, gid: found.gid };
  }
  const wanted = defaultUserName(app);
  const comment = `${APP_USER_COMMENT} ${app}`;
  let found = await lookupUser(wanted);
  if (!found) {
    try {
      await execFileP(
        'useradd',
        ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent'].concat([
          '--shell',
          '/usr/sbin/nologin',
          '--comment',
          comment,
          wanted,
        ]),
        { timeout: 60_000 },
      );
    } catch (err) {
      // Another agent on this host may have made it meanwhile (the tests run several): look again.
      found = await lookupUser(wanted);
      if (!found) {
        const e = err as { stderr?: string; message: string };
        throw new AppUserError(
          'APP_USER_FAILED',
          `cannot create user '${wanted}' for app '${app}': ${(e.stderr || e.message).trim().split('\n')[0]}`,
        );
      }
    }
    found ??= await lookupUser(wanted);
    if (!found) throw new AppUserError('APP_USER_FAILED', `user '${wanted}' was created but cannot be found`);
  }
  if (found.comment !== comment || found.uid === 0) {
    throw new AppUserError(
      'APP_USER_CONFLICT',
      `user '${wanted}' exists and was not made by plexus for app '${app}'; remove it or deploy with --user NAME`,
    );
  }
  return { name: wanted, uid: found.uid, gid: found.gid };
}
