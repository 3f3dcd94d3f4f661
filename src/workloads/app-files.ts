/**
 * Who owns what under DATA when apps run as their own users (issue 13). The agent is root; an
 * app may write only its release folders and its `data/` folder, and reach nothing else of the
 * agent's:
 *
 *   DATA/                  0711 root      apps may pass through, not list
 *   ├── keys/, logs/, plexus.db, plexus.sock, config.yaml …   no access for group or others
 *   └── apps/              0711 root
 *       └── APP/           0750 root:APP  only this app's group may enter
 *           ├── releases/  0750 root:APP
 *           │   └── ID/    APP:APP        the app's code (it may write there, as apps expect)
 *           ├── current    link, root
 *           ├── data/      0700 APP:APP   its state, kept across releases; its HOME
 *           ├── logs/      0700 root      written through the descriptor the app is given;
 *           │                             root's, so the agent's rotation can't be pointed
 *           │                             elsewhere by a link the app planted
 *           └── tmp/       0700 root      downloads and extraction in progress
 *
 * Anything the agent deletes inside a folder the app owns is deleted by a process running as
 * the app (`rm` with the app's uid): links the app planted then lead only where it could write
 * anyway. The agent only removes the emptied folders themselves.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  rmdirSync,
  statSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AppUser } from './app-users.ts';

/**
 * Makes DATA passable for app users and everything in it but `apps/` private to the agent: a
 * data dir made before issue 13, or by hand, may hold a 0644 file that an app would now reach.
 */
export function protectDataDir(dataDir: string, appsDir: string): void {
  mkdirSync(appsDir, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(dataDir)) {
    const path = join(dataDir, name);
    if (path === appsDir) continue;
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) continue;
    if (st && (st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) chmodSync(path, st.mode & 0o7700);
  }
  chmodSync(dataDir, 0o711);
  chmodSync(appsDir, 0o711);
}

/**
 * The first folder above `appsDir` that an app user could not pass through (no `x` for others),
 * or undefined: a data dir under a private folder (a 0700 home, a test's mkdtemp) would leave
 * every app unable to reach its own release.
 */
export function unpassableAncestor(appsDir: string): string | undefined {
  for (let dir = dirname(dirname(appsDir)); ; dir = dirname(dir)) {
    const st = statSync(dir, { throwIfNoEntry: false });
    if (st && (st.mode & 0o001) === 0) return dir;
    if (dir === dirname(dir)) return undefined;
  }
}

/** The folders of an app whose owners are set here (releases.ts's AppPaths fits). */
export interface AppDirs {
  root: string;
  releases: string;
  data: string;
  logs: string;
  tmp: string;
}

/** Gives `user` its folders of the app (idempotent; cheap enough for every launch). */
export function grantAppDirs(p: AppDirs, user: AppUser): void {
  mkdirSync(p.data, { recursive: true, mode: 0o700 });
  setOwner(p.root, 0, user.gid, 0o750);
  setOwner(p.releases, 0, user.gid, 0o750);
  setOwner(p.data, user.uid, user.gid, 0o700);
  setOwner(p.logs, 0, 0, 0o700);
  setOwner(p.tmp, 0, 0, 0o700);
}

function setOwner(path: string, uid: number, gid: number, mode: number): void {
  chownSync(path, uid, gid);
  chmodSync(path, mode);
}

/**
 * Gives a tree to `user`, links included (lchown: a link is never followed). Only for trees the
 * app cannot change meanwhile: a staged release in the agent's own tmp/, or the releases of an
 * app that ran as root before (a root app could do anything anyway).
 */
export function chownTree(dir: string, user: AppUser): void {
  lchownSync(dir, user.uid, user.gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) chownTree(path, user);
    else lchownSync(path, user.uid, user.gid);
  }
}

/**
 * Deletes `dir`, a folder owned by `user` in a folder it cannot write: its contents as `user`
 * (`rm -rf`, which cannot then remove `dir` itself), then the empty folder as the agent.
 */
export async function removeOwnedTree(dir: string, user: AppUser | undefined): Promise<void> {
  if (!statSync(dir, { throwIfNoEntry: false })) return;
  if (user && user.uid !== process.getuid?.()) {
    await new Promise<void>((resolve) => {
      const child = spawn('rm', ['-rf', '--one-file-system', '--', dir], {
        uid: user.uid,
        gid: user.gid,
        stdio: 'ignore',
      });
      child.once('error', () => resolve());
      child.once('exit', () => resolve());
    });
    // Only the folder is left, unless something of the app's refilled it meanwhile: then it stays.
    try {
      rmdirSync(dir);
    } catch {
      // ENOENT (gone) or ENOTEMPTY (refilled): nothing more the agent may safely do.
    }
    return;
  }
  await rm(dir, { recursive: true, force: true });
}
