/**
 * Safe extraction of a bundle (zip or tar.gz, told apart by their magic bytes) into a fresh
 * directory. It refuses, rather than silently fixes, entries with `..` or absolute paths, links
 * that point outside the release, device files, and archives over the entry or byte limits (zip
 * bombs). The caller extracts into a temporary directory and deletes it on any error, so a bad
 * archive never leaves a half-written release (docs/workloads.md). The format readers are
 * extract-tar.ts and extract-zip.ts; the checks they share are in extract-checks.ts.
 */
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, realpath, rename, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { MAX_ARCHIVE_ENTRIES, MAX_EXTRACTED_BYTES, STREAM_CHUNK_BYTES } from './constants.ts';
import { UnsafeArchiveError } from './errors.ts';
import { verifyLinks } from './extract-checks.ts';
import { extractTar } from './extract-tar.ts';
import { extractZip } from './extract-zip.ts';

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
