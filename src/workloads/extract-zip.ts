/**
 * Extraction of a zip file. yauzl reads the central directory, so the entry count is known (and
 * refused when over the limit) before anything is written; each entry passes the checks of
 * extract-checks.ts, files are written with 'wx' (never through a link), and links are made last.
 */
import { mkdir, open, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
// Types only: yauzl loads with the first zip bundle, not with every agent.
import type * as yauzl from 'yauzl';
import { UnsafeArchiveError } from './errors.ts';
import { checkLinkTarget, clip, oneLine, safeEntryPath, tooBig } from './extract-checks.ts';

/** Extracts the zip `file` into `root`. */
export async function extractZip(file: string, root: string, maxEntries: number, maxBytes: number) {
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
