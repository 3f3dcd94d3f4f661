/**
 * The `current` and `previous` symlinks. A switch writes a new symlink beside the old one and
 * renames it over it: rename(2) is atomic, so `current` always names a whole release, never none.
 */
import { readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { KEEP_RELEASES } from './constants.ts';
import type { InstallLayout } from './layout.ts';

/** Points `link` at `target` atomically. */
export function pointAt(link: string, target: string): void {
  const tmp = `${link}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

/** The version a link names (`releases/VERSION`), or undefined when there is none. */
export function versionAt(link: string): string | undefined {
  try {
    return basename(readlinkSync(link));
  } catch {
    return undefined;
  }
}

/** Makes `version` current and remembers the one it replaces as `previous`. */
export function switchTo(layout: InstallLayout, version: string): { from?: string } {
  const from = versionAt(layout.current);
  if (from && from !== version) pointAt(layout.previous, join('releases', from));
  pointAt(layout.current, join('releases', version));
  return { from };
}

/** Removes releases beyond the newest KEEP_RELEASES (by when they were unpacked: ctime, since tar sets mtimes to the build's), never `current` or `previous`. */
export function pruneReleases(layout: InstallLayout): string[] {
  const keep = new Set([versionAt(layout.current), versionAt(layout.previous)]);
  let entries: { name: string; t: number }[];
  try {
    entries = readdirSync(layout.releases)
      .filter((n) => !n.startsWith('.'))
      .map((name) => ({ name, t: statSync(join(layout.releases, name)).ctimeMs }))
      .sort((a, b) => b.t - a.t);
  } catch {
    return [];
  }
  // current and previous always stay; the newest others fill the rest of KEEP_RELEASES.
  const others = entries.filter((e) => !keep.has(e.name));
  const room = Math.max(0, KEEP_RELEASES - (entries.length - others.length));
  const removed: string[] = [];
  for (const e of others.slice(room)) {
    rmSync(join(layout.releases, e.name), { recursive: true, force: true });
    removed.push(e.name);
  }
  return removed;
}
