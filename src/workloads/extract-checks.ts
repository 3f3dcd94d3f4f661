/**
 * The safety checks of bundle extraction, shared by the tar and zip readers: entry names that
 * escape the release (`..`, absolute paths, Windows-style ones), links that point outside it, a
 * byte cap for streams whose entries lie about their size. Each refuses the whole archive with an
 * UnsafeArchiveError rather than skip or fix an entry.
 */
import { readdir, readlink, realpath } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import { UnsafeArchiveError } from './errors.ts';

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
export function checkLinkTarget(root: string, linkRel: string, target: string): void {
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

/** Re-checks every link on disk by its real path: a chain of inside-looking links can still escape. */
export async function verifyLinks(root: string): Promise<void> {
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

/** Passes bytes through until `limit`, then fails with ARCHIVE_TOO_LARGE. */
export function byteCap(limit: number, shownLimit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(tooBig(shownLimit));
      else cb(null, chunk);
    },
  });
}

/** True when `p` is `root` or inside it. */
function within(root: string, p: string): boolean {
  return p === root || p.startsWith(root + sep);
}

/** The refusal of an archive that expands past `maxBytes` (0: the limit is not shown). */
export function tooBig(maxBytes: number): UnsafeArchiveError {
  return new UnsafeArchiveError(
    'ARCHIVE_TOO_LARGE',
    `archive expands to more than ${maxBytes || 'the allowed'} bytes (zip bomb?); refusing it`,
    'too_large',
  );
}

/** Shortens an entry name for an error message (a hostile name may be very long). */
export function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** The first line of an error's message, for a one-line refusal. */
export function oneLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}
