/**
 * A box without systemd, for where systemd-nspawn cannot boot (issue 15's fallback): the cached
 * Debian rootfs (nspawn.ts) under a throwaway overlay, in mount and PID namespaces of its own,
 * sharing the host's network like the nspawn boxes. PID 1 inside is a small perl loop that reaps
 * orphans, as an init would, so that a stopped supervisor does not linger as a zombie. Host
 * folders are bound read-only at the same place as in nspawn boxes (`inBox`).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type Container, ensureRootfs, inBox, nsenterExec } from './nspawn.ts';

/** An init that only reaps: waits for any child, sleeps a second when there is none. */
const REAPER = 'while (1) { sleep 1 if waitpid(-1, 0) < 0 }';

/** Starts the box; resolves once its PID 1 runs. `stop()` ends every process in it. */
export async function startChrootBox(opts: { binds: string[] }): Promise<Container> {
  const rootfs = await ensureRootfs();
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  // Everything lives in a tmpfs of the box's own mount namespace: it goes when the box does.
  const top = '/run/plexus-chroot-box';
  const lines = [
    'set -e',
    `mkdir -p ${top} && mount -t tmpfs -o mode=0700 tmpfs ${top}`,
    `mkdir ${top}/upper ${top}/work ${top}/root`,
    `mount -t overlay overlay -o lowerdir=${q(rootfs)},upperdir=${top}/upper,workdir=${top}/work ${top}/root`,
    `mount -t proc proc ${top}/root/proc`,
    `mount --rbind /dev ${top}/root/dev`,
    `mount -t tmpfs -o mode=0755 tmpfs ${top}/root/run`,
    `mount -t tmpfs -o mode=1777 tmpfs ${top}/root/tmp`,
  ];
  for (const b of opts.binds) {
    const at = `${top}/root${inBox(b)}`;
    lines.push(`mkdir -p ${q(at)}`, `mount --bind ${q(b)} ${q(at)}`, `mount -o remount,bind,ro ${q(at)}`);
  }
  lines.push(`exec chroot ${top}/root /usr/bin/perl -e ${q(REAPER)}`);
  const outer = spawn(
    'unshare',
    ['--mount', '--pid', '--fork', '--propagation', 'private', 'sh', '-c', lines.join('\n')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  outer.stderr.on('data', (c) => (err = (err + c).slice(-2000)));
  const leader = await findPerl(
    outer.pid!,
    () => outer.exitCode !== null,
    () => err,
  );
  // Mount and PID namespaces, and the box's root and working folder (its chroot).
  const exec = nsenterExec(leader, ['-m', '-p', '-r', '-w']);
  const stop = async () => {
    if (outer.exitCode !== null) return;
    const gone = new Promise((r) => outer.once('exit', r));
    // PID 1 of the namespace going takes every process in it along.
    process.kill(leader, 'SIGKILL');
    await gone;
  };
  return { leader, exec, stop };
}

/** The box's PID 1 as the host sees it: the perl that unshare's child became. */
async function findPerl(unshare: number, exited: () => boolean, output: () => string): Promise<number> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !exited()) {
    try {
      const kids = readFileSync(`/proc/${unshare}/task/${unshare}/children`, 'utf8').trim().split(/\s+/);
      for (const k of kids.filter(Boolean)) {
        if (readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'perl') return Number(k);
      }
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the chroot box did not start: ${output().slice(-1000)}`);
}
