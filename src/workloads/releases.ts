/**
 * The on-disk layout of an app and its releases:
 *
 *   DATA/apps/APP/releases/ID/   one extracted bundle per release
 *   DATA/apps/APP/current        symlink → releases/ID, switched atomically by rename(2)
 *   DATA/apps/APP/data/          the app's own state, kept across releases (its HOME)
 *   DATA/apps/APP/logs/app.log   the app's stdout and stderr (rotated)
 *   DATA/apps/APP/tmp/           downloads and extraction in progress (never a release)
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { removeOwnedTree } from './app-files.ts';
import type { AppUser } from './app-users.ts';

/** Paths of one app. */
export interface AppPaths {
  root: string;
  releases: string;
  current: string;
  data: string;
  logs: string;
  log: string;
  tmp: string;
}

/** Paths of `app` under DATA/apps. */
export function appPaths(appsDir: string, app: string): AppPaths {
  const root = join(appsDir, app);
  return {
    root,
    releases: join(root, 'releases'),
    current: join(root, 'current'),
    data: join(root, 'data'),
    logs: join(root, 'logs'),
    log: join(root, 'logs', 'app.log'),
    tmp: join(root, 'tmp'),
  };
}

/** Creates an app's folders (idempotent). */
export function ensureAppDirs(p: AppPaths): void {
  for (const d of [p.root, p.releases, p.logs, p.tmp]) mkdirSync(d, { recursive: true, mode: 0o700 });
}

/** A new sortable release id, e.g. `20261122-020512-3fa2`: readable, and typed in `rollback --to`. */
export function newReleaseId(now = new Date()): string {
  const iso = now.toISOString().replace(/[-:]/g, '');
  return `${iso.slice(0, 8)}-${iso.slice(9, 15)}-${randomBytes(2).toString('hex')}`;
}

/** The folder of a release. */
export function releaseDir(p: AppPaths, id: string): string {
  return join(p.releases, id);
}

/** A fresh staging folder in the app's tmp/. */
export async function stagingDir(p: AppPaths, prefix: string): Promise<string> {
  await mkdir(p.tmp, { recursive: true, mode: 0o700 });
  return mkdtemp(join(p.tmp, `${prefix}-`));
}

/** Moves a fully extracted staging folder into place as release `id` (one rename). */
export async function commitRelease(p: AppPaths, staged: string, id: string): Promise<string> {
  const dest = releaseDir(p, id);
  await rename(staged, dest);
  return dest;
}

/** Points `current` at release `id`: a new link renamed over the old one, so readers never see none. */
export async function switchCurrent(p: AppPaths, id: string): Promise<void> {
  const tmp = `${p.current}.${randomBytes(4).toString('hex')}`;
  await symlink(join('releases', id), tmp);
  await rename(tmp, p.current);
}

/** The release `current` points at, if any. */
export async function currentRelease(p: AppPaths): Promise<string | undefined> {
  try {
    return (await readlink(p.current)).split('/').pop();
  } catch {
    return undefined;
  }
}

/** Deletes release folders; those `user` owns are emptied as `user` (app-files.ts says why). */
export async function removeReleases(p: AppPaths, ids: string[], user?: AppUser): Promise<void> {
  for (const id of ids) await removeOwnedTree(releaseDir(p, id), user);
}

/** Deletes everything in tmp/ (leftovers of a deploy the agent died in). */
export async function clearTmp(p: AppPaths): Promise<void> {
  await rm(p.tmp, { recursive: true, force: true });
  await mkdir(p.tmp, { recursive: true, mode: 0o700 });
}

/** Deletes the whole app folder: what `user` owns first, as `user`, then the agent's own rest. */
export async function removeAppDir(p: AppPaths, user?: AppUser): Promise<void> {
  if (user) {
    const ids = (await readdir(p.releases).catch(() => [] as string[])).filter((id) => !id.startsWith('.'));
    await removeReleases(p, ids, user);
    await removeOwnedTree(p.data, user);
  }
  await rm(p.root, { recursive: true, force: true });
}
