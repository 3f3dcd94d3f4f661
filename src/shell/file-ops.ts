/**
 * The file operations behind `plexus cp` (issue 16), each run on the node as the session's user
 * (users.ts: setpriv, the user's groups), so a copy reads and writes exactly what that user may:
 * `find` describes a path or a tree, `tail -c +N` reads a file from an offset, `cat >>` appends
 * to a partial file, and one `sh` script checks and moves a finished one into place. The agent
 * itself never opens a user's path. A tool's failure becomes one line: permission denied, no
 * such path, or a full disk.
 */
import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { FileTransferError } from './errors.ts';
import { asUser, type SessionUser, sessionEnv } from './users.ts';

/** One entry of a described path: `f` file, `d` directory, `l` symlink (copied as what it is not). */
export interface FileEntry {
  /** Relative to the described path ('' for the path itself). */
  rel: string;
  type: 'f' | 'd';
  mode: number;
  size: number;
  /** Seconds since the epoch, with fractions. */
  mtime: number;
}

/** What one tool run printed and how it ended. */
interface ToolResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** The most a describing tool may print (a tree of ~100 000 entries). */
const MAX_TOOL_OUTPUT = 16 * 1024 * 1024;

/** Runs `argv` as `user` and collects its output, within a size limit. */
export function runAsUser(user: SessionUser, argv: string[], cwd = '/'): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(asUser(user, argv)[0], asUser(user, argv).slice(1), {
      cwd,
      env: sessionEnv(user, undefined),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let size = 0;
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_TOOL_OUTPUT) child.kill('SIGKILL');
      else out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 4096) stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

/**
 * The sha256 state of `path` as `user` reads it (`cat`), to continue with the bytes appended
 * after it (a resumed copy's partial file).
 */
export function hashAsUser(user: SessionUser, path: string): Promise<Hash> {
  return new Promise((resolve, reject) => {
    const child = spawn(asUser(user, ['cat', '--', path])[0], asUser(user, ['cat', '--', path]).slice(1), {
      cwd: '/',
      env: sessionEnv(user, undefined),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const h = createHash('sha256');
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => h.update(c));
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 4096) stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(h) : reject(toolError(path, stderr))));
  });
}

/** Turns a tool's stderr into the error a user should see. */
export function toolError(path: string, stderr: string): FileTransferError {
  const line = stderr.trim().split('\n').at(-1) ?? 'failed';
  if (/No space left|Disk quota exceeded/i.test(stderr))
    return new FileTransferError('DISK_FULL', `${path}: no space left on the node's disk`);
  if (/Permission denied|Operation not permitted/i.test(stderr))
    return new FileTransferError('PATH_DENIED', `${path}: permission denied for this user`);
  if (/No such file|not found/i.test(stderr))
    return new FileTransferError('PATH_NOT_FOUND', `${path}: no such file or directory`);
  return new FileTransferError('FILE_OP_FAILED', `${path}: ${line.slice(0, 300)}`);
}

/** Describes `path` (and with `recursive`, the tree under it) as `user` sees it. */
export async function describePath(
  user: SessionUser,
  path: string,
  recursive: boolean,
): Promise<FileEntry[]> {
  const r = await runAsUser(user, [
    'find',
    path,
    ...(recursive ? [] : ['-maxdepth', '0']),
    '(',
    '-type',
    'f',
    '-o',
    '-type',
    'd',
    ')',
    '-printf',
    '%y %m %s %T@ %P\\0',
  ]);
  if (r.code !== 0) throw toolError(path, r.stderr);
  const entries: FileEntry[] = [];
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    const m = /^([fd]) ([0-7]+) (\d+) ([\d.]+) (.*)$/s.exec(rec);
    if (!m) continue;
    entries.push({
      type: m[1] as 'f' | 'd',
      mode: Number.parseInt(m[2], 8),
      size: Number(m[3]),
      mtime: Number(m[4]),
      rel: m[5],
    });
  }
  if (entries.length === 0) throw new FileTransferError('PATH_NOT_FOUND', `${path}: not a file or directory`);
  return entries;
}

/** The temporary name a file is written under until it is complete. */
export function partialName(path: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.plexus-part`;
}

/**
 * Moves a finished partial file into place, as `user`: checks its sha256, sets mode and mtime,
 * renames it over `path` (atomic within a file system). A mismatch deletes the partial.
 * `written` is the sha256 of every byte the agent handed to the writing `cat` (hashed as they
 * went in, with node:crypto's SHA-NI code), which `cat`'s clean exit says are in the file: the
 * check then costs no second pass over the file (coreutils' sha256sum ran at ~0.37 GB/s, 1.4 s
 * of CPU for a 512 MiB copy). Without it the file is re-read.
 */
export async function finishFile(
  user: SessionUser,
  path: string,
  f: { mode: number; mtime: number; sha256: string; written?: string },
): Promise<'ok' | 'mismatch'> {
  const got = f.written === undefined ? 'got=$(sha256sum -- "$1" | cut -d" " -f1); ' : 'got=$6; ';
  const script =
    `set -e; ${got}` +
    'if [ "$got" != "$2" ]; then rm -f -- "$1"; echo mismatch; exit 0; fi; ' +
    'chmod "$3" -- "$1"; touch -m -d "@$4" -- "$1"; mv -f -- "$1" "$5"; echo ok';
  const r = await runAsUser(user, [
    'sh',
    '-c',
    script,
    'sh',
    partialName(path),
    f.sha256,
    (f.mode & 0o7777).toString(8),
    f.mtime.toFixed(3),
    path,
    ...(f.written === undefined ? [] : [f.written]),
  ]);
  if (r.code !== 0) throw toolError(path, r.stderr);
  return r.stdout.toString().trim() === 'ok' ? 'ok' : 'mismatch';
}
