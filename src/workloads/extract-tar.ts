/**
 * Extraction of a tar or tar.gz, from a file or from a download in progress. Every entry passes
 * the checks of extract-checks.ts before node-tar writes it; the first refusal stops the stream
 * and fails the whole archive.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
// Types only: tar loads with the first bundle (see below), not with every agent.
import type * as tar from 'tar';
import { STREAM_CHUNK_BYTES } from './constants.ts';
import { UnsafeArchiveError } from './errors.ts';
import { byteCap, checkLinkTarget, clip, oneLine, safeEntryPath, tooBig } from './extract-checks.ts';

/** Extracts the tar (gunzipped first when `gzipped`) arriving on `input` into `root`. */
export async function extractTar(
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
