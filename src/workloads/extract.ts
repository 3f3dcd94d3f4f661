/**
 * Safe extraction of a bundle (zip or tar.gz, told apart by their magic bytes) into a fresh
 * directory. It refuses, rather than silently fixes, entries with `..` or absolute paths, links
 * that point outside the release, device files, and archives over the entry or byte limits (zip
 * bombs). The caller extracts into a temporary directory and deletes it on any error, so a bad
 * archive never leaves a half-written release (DESIGN.md, Workloads).
 */
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, realpath, rename, rmdir, symlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
// Types only: tar and yauzl load with the first bundle (see extractTar), not with every agent.
import type * as tar from 'tar';
import type * as yauzl from 'yauzl';
import { MAX_ARCHIVE_ENTRIES, MAX_EXTRACTED_BYTES, STREAM_CHUNK_BYTES } from './constants.ts';
import { UnsafeArchiveError } from './errors.ts';

/** Limits of one extraction. */
export interface ExtractLimits {
  /** Most entries (files, dirs, links). */
  maxEntries?: number;
  /** Most bytes once extracted. */
  maxBytes?: number;
}

/** What was extracted. */
export interface ExtractResult {
  format: 'zip' | 'tar.gz' | 'tar';
  entries: number;
  bytes: number;
}

/** Detects the archive format from its first bytes. */
export async function detectFormat(file: string): Promise<ExtractResult['format']> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(262);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x06054b50) return 'zip'; // empty zip
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
    if (bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  } finally {
    await fh.close();
  }
  throw new UnsafeArchiveError('BAD_ARCHIVE', 'the bundle is neither a zip nor a tar.gz archive');
}

/**
 * Turns an archive entry name into a safe relative path, or throws. Returns '' for the root.
 * `\` counts as a separator too, so a Windows-made `..\..\x` is caught.
 */
export function safeEntryPath(name: string): string {
  if (name.includes('\0')) throw new UnsafeArchiveError('ZIP_SLIP', 'archive entry name contains a NUL byte');
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) {
    throw new UnsafeArchiveError(
      'ZIP_SLIP',
      `archive entry '${clip(name)}' has an absolute path; refusing it`,
    );
  }
  const parts = name.split(/[/\\]+/).filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw new UnsafeArchiveError(
      'ZIP_SLIP',
      `archive entry '${clip(name)}' points outside the release ('..'); refusing it`,
    );
  }
  return parts.join('/');
}

/** Checks a link target, relative to the link's own directory, stays inside `root`. */
function checkLinkTarget(root: string, linkRel: string, target: string): void {
  if (target.startsWith('/') || /^[A-Za-z]:/.test(target)) {
    throw new UnsafeArchiveError(
      'LINK_ESCAPE',
      `link '${clip(linkRel)}' points to an absolute path; refusing it`,
    );
  }
  const resolved = resolve(root, dirname(linkRel), target);
  if (!within(root, resolved)) {
    throw new UnsafeArchiveError(
      'LINK_ESCAPE',
      `link '${clip(linkRel)}' points outside the release; refusing it`,
    );
  }
}

/** Extracts `file` into the existing empty directory `dest`. */
export async function extractBundle(
  file: string,
  dest: string,
  limits: ExtractLimits = {},
): Promise<ExtractResult> {
  const maxEntries = limits.maxEntries ?? MAX_ARCHIVE_ENTRIES;
  const maxBytes = limits.maxBytes ?? MAX_EXTRACTED_BYTES;
  const root = await realpath(dest);
  const format = await detectFormat(file);
  const counts =
    format === 'zip'
      ? await extractZip(file, root, maxEntries, maxBytes)
      : await extractTar(
          createReadStream(file, { highWaterMark: STREAM_CHUNK_BYTES }),
          format === 'tar.gz',
          root,
          maxEntries,
          maxBytes,
        );
  await verifyLinks(root);
  await hoistSingleDirectory(root);
  return { format, ...counts };
}

/**
 * Extracts a tar or tar.gz arriving as a stream (a download in progress) into the existing
 * empty directory `dest`, with the same checks as `extractBundle`.
 */
export async function extractTarStream(
  input: Readable,
  dest: string,
  limits: ExtractLimits = {},
): Promise<ExtractResult> {
  const root = await realpath(dest);
  const counts = await extractTar(
    input,
    true,
    root,
    limits.maxEntries ?? MAX_ARCHIVE_ENTRIES,
    limits.maxBytes ?? MAX_EXTRACTED_BYTES,
  );
  await verifyLinks(root);
  await hoistSingleDirectory(root);
  return { format: 'tar.gz', ...counts };
}

async function extractTar(
  input: Readable,
  gzipped: boolean,
  root: string,
  maxEntries: number,
  maxBytes: number,
) {
  let entries = 0;
  let bytes = 0;
  let refused: Error | undefined;
  const fail = (err: Error) => {
    refused ??= err;
    input.destroy(err);
    return false;
  };
  // Loaded here, not at the top: tar and yauzl are ~1.5 MB of heap (1.3 + 0.3) that an agent
  // which deploys nothing never needs (issue 2: idle RSS target).
  const { Unpack } = await import('tar');
  const unpack = new Unpack({
    cwd: root,
    strict: true,
    preserveOwner: false,
    // Our own checks run first so we can refuse the whole archive instead of skipping an entry.
    filter: (path, entry) => {
      if (refused) return false;
      const e = entry as tar.ReadEntry;
      try {
        if (++entries > maxEntries) {
          throw new UnsafeArchiveError(
            'TOO_MANY_FILES',
            `archive has more than ${maxEntries} entries; refusing it`,
            'too_large',
          );
        }
        const rel = safeEntryPath(path);
        // No setuid, setgid or sticky bits from a bundle.
        if (typeof e.mode === 'number') e.mode &= 0o777;
        bytes += e.size ?? 0;
        if (bytes > maxBytes) throw tooBig(maxBytes);
        switch (e.type) {
          case 'File':
          case 'OldFile':
          case 'ContiguousFile':
          case 'Directory':
            break;
          case 'SymbolicLink':
            checkLinkTarget(root, rel, String(e.linkpath ?? ''));
            break;
          case 'Link':
            safeEntryPath(String(e.linkpath ?? ''));
            break;
          default:
            if (/Header|Extended|Pax/i.test(e.type)) break;
            throw new UnsafeArchiveError(
              'BAD_ENTRY',
              `archive entry '${clip(path)}' is a ${e.type}; only files, directories and links are allowed`,
            );
        }
        return true;
      } catch (err) {
        return fail(err as Error);
      }
    },
  });
  try {
    // Node's own gunzip runs on the thread pool, in parallel with parsing and writing; node-tar's
    // built-in one would run on the main thread. Its output comes in STREAM_CHUNK_BYTES pieces,
    // which tar writes to the files as they are (constants.ts): gunzip + tar of a local 20 MB
    // bundle read and inflated in 64 KiB pieces took 112 ms, in 1 MiB pieces 45 ms (median of 15).
    // The decompressed stream is bounded too: trailing garbage or padding after the last entry
    // would otherwise be inflated without limit (a gzip bomb that no entry size betrays).
    const cap = byteCap(maxBytes + (maxEntries + 2) * 1024 + 1024 * 1024, maxBytes);
    if (gzipped) await pipeline(input, createGunzip({ chunkSize: STREAM_CHUNK_BYTES }), cap, unpack);
    else await pipeline(input, cap, unpack);
  } catch (err) {
    if (refused) throw refused;
    if (err instanceof UnsafeArchiveError) throw err;
    throw new UnsafeArchiveError('BAD_ARCHIVE', `the tar.gz bundle is corrupt: ${oneLine(err)}`);
  }
  if (refused) throw refused;
  return { entries, bytes };
}

async function extractZip(file: string, root: string, maxEntries: number, maxBytes: number) {
  const { open: openZip } = await import('yauzl');
  return new Promise<{ entries: number; bytes: number }>((resolvePromise, reject) => {
    openZip(
      file,
      { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: true },
      (err, zip) => {
        if (err || !zip)
          return reject(new UnsafeArchiveError('BAD_ARCHIVE', `the zip bundle is corrupt: ${oneLine(err)}`));
        if (zip.entryCount > maxEntries) {
          zip.close();
          return reject(
            new UnsafeArchiveError(
              'TOO_MANY_FILES',
              `archive has ${zip.entryCount} entries, more than ${maxEntries}; refusing it`,
              'too_large',
            ),
          );
        }
        let entries = 0;
        let bytes = 0;
        let done = false;
        // Links are made after every file is written, so no file can be written through one.
        const links: { rel: string; target: string }[] = [];
        const finish = (error?: unknown) => {
          if (done) return;
          done = true;
          zip.close();
          if (error) {
            reject(
              error instanceof UnsafeArchiveError
                ? error
                : new UnsafeArchiveError('BAD_ARCHIVE', `the zip bundle is corrupt: ${oneLine(error)}`),
            );
          } else resolvePromise({ entries, bytes });
        };
        zip.on('error', finish);
        zip.on('end', async () => {
          try {
            for (const l of links) await symlink(l.target, join(root, l.rel));
            finish();
          } catch (e) {
            finish(e);
          }
        });
        zip.on('entry', async (entry: yauzl.Entry) => {
          try {
            entries++;
            const rawName = entry.fileName as unknown as Buffer;
            // General purpose bit 11: UTF-8 names; otherwise CP437, which latin1 approximates.
            const name = rawName.toString(entry.generalPurposeBitFlag & 0x800 ? 'utf8' : 'latin1');
            const rel = safeEntryPath(name);
            const mode = (entry.externalFileAttributes >>> 16) & 0o170777;
            const type = mode & 0o170000;
            bytes += entry.uncompressedSize;
            if (bytes > maxBytes) throw tooBig(maxBytes);
            if (rel === '') return zip.readEntry();
            if (name.endsWith('/') || type === 0o040000) {
              await mkdir(join(root, rel), { recursive: true });
              return zip.readEntry();
            }
            if (type === 0o120000) {
              const target = (await readEntry(zip, entry, 4096)).toString('utf8');
              checkLinkTarget(root, rel, target);
              links.push({ rel, target });
              return zip.readEntry();
            }
            if (type !== 0 && type !== 0o100000) {
              throw new UnsafeArchiveError(
                'BAD_ENTRY',
                `archive entry '${clip(name)}' is not a file, directory or link`,
              );
            }
            await mkdir(dirname(join(root, rel)), { recursive: true });
            await writeEntry(
              zip,
              entry,
              join(root, rel),
              mode & 0o777 || 0o644,
              maxBytes - (bytes - entry.uncompressedSize),
            );
            zip.readEntry();
          } catch (e) {
            finish(e);
          }
        });
        zip.readEntry();
      },
    );
  });
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((res, rej) =>
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) return rej(err);
      // The reader sees the first error; a size-check stream may emit another after it stopped
      // reading, which must not become an uncaught exception.
      stream.on('error', () => {});
      res(stream);
    }),
  );
}

async function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, max: number): Promise<Buffer> {
  if (entry.uncompressedSize > max)
    throw new UnsafeArchiveError('BAD_ENTRY', 'a link target in the archive is too long');
  const chunks: Buffer[] = [];
  for await (const c of await openEntry(zip, entry)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function writeEntry(
  zip: yauzl.ZipFile,
  entry: yauzl.Entry,
  path: string,
  mode: number,
  budget: number,
) {
  const stream = await openEntry(zip, entry);
  // 'wx': never follow or replace something already there (a duplicate entry or a link).
  const fh = await open(path, 'wx', mode | 0o200);
  let written = 0;
  try {
    for await (const chunk of stream) {
      written += (chunk as Buffer).length;
      // validateEntrySizes also stops a lying header, but only at the end of the entry.
      if (written > budget) throw tooBig(0);
      await fh.write(chunk as Buffer);
    }
  } finally {
    await fh.close();
  }
}

/** Re-checks every link on disk by its real path: a chain of inside-looking links can still escape. */
async function verifyLinks(root: string): Promise<void> {
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    for (const d of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) stack.push(p);
      else if (d.isSymbolicLink()) {
        let real: string;
        try {
          real = await realpath(p);
        } catch {
          // Dangling: judge the literal target, which checkLinkTarget already did.
          await readlink(p);
          continue;
        }
        if (!within(root, real)) {
          throw new UnsafeArchiveError(
            'LINK_ESCAPE',
            `link '${clip(p.slice(root.length + 1))}' resolves outside the release; refusing it`,
          );
        }
      }
    }
  }
}

/** A bundle made of one top-level folder (GitHub archives, `tar czf app.tgz app/`) is that folder. */
async function hoistSingleDirectory(root: string): Promise<void> {
  const items = await readdir(root);
  if (items.length !== 1) return;
  const only = join(root, items[0]);
  const st = await lstat(only);
  if (!st.isDirectory()) return;
  const tmp = `${root}.hoist`;
  await rename(only, tmp);
  await rmdir(root);
  await rename(tmp, root);
}

/** Passes bytes through until `limit`, then fails with ARCHIVE_TOO_LARGE. */
function byteCap(limit: number, shownLimit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(tooBig(shownLimit));
      else cb(null, chunk);
    },
  });
}

function within(root: string, p: string): boolean {
  return p === root || p.startsWith(root + sep);
}

function tooBig(maxBytes: number): UnsafeArchiveError {
  return new UnsafeArchiveError(
    'ARCHIVE_TOO_LARGE',
    `archive expands to more than ${maxBytes || 'the allowed'} bytes (zip bomb?); refusing it`,
    'too_large',
  );
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function oneLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}
