/**
 * A release tarball on its way in: its checksum and signature first (release-signature.ts), then
 * its entries (one top folder `plexus-VERSION/`, files and folders only, no path leaving it), its
 * RELEASE manifest (this OS and CPU), then unpacking beside the running version. Nothing here
 * touches `current`: a refused or failed release leaves the running version as it was.
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { MAX_RELEASE_BYTES } from './constants.ts';
import { NoSpaceError, ReleaseRefusedError } from './errors.ts';
import { checkPlatform, parseManifest, type ReleaseManifest } from './layout.ts';
import { readTrustedKey, sumFor, verifySums } from './release-signature.ts';

/** What proves a tarball: its SHA256SUMS and the signature over it, and optionally a sha256 the operator gave. */
export interface ReleaseProof {
  sums: Buffer;
  sig: string;
  sha256?: string;
}

/** The sha256 of a file, read as a stream (a release is tens of MB). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Reads SHA256SUMS and SHA256SUMS.sig from beside a tarball. */
export function proofBeside(file: string, sha256?: string): ReleaseProof {
  const dir = join(file, '..');
  let sums: Buffer;
  let sig: string;
  try {
    sums = readFileSync(join(dir, 'SHA256SUMS'));
    sig = readFileSync(join(dir, 'SHA256SUMS.sig'), 'utf8');
  } catch {
    throw new ReleaseRefusedError(
      'BAD_SIGNATURE',
      `no SHA256SUMS and SHA256SUMS.sig beside ${file}: an upgrade installs signed releases only`,
    );
  }
  return { sums, sig, sha256 };
}

/**
 * Checks a tarball against its proof and the trusted key, then its entries and manifest.
 * Returns the manifest and the unpacked size.
 */
export async function verifyRelease(
  file: string,
  proof: ReleaseProof,
  trustedKeyPath: string,
): Promise<{ manifest: ReleaseManifest; unpackedBytes: number; sha256: string }> {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new ReleaseRefusedError('DOWNLOAD_FAILED', `cannot read ${file}`);
  }
  if (size > MAX_RELEASE_BYTES) {
    throw new ReleaseRefusedError(
      'RELEASE_TOO_LARGE',
      `${file} is larger than ${MAX_RELEASE_BYTES >> 20} MB`,
    );
  }
  verifySums(proof.sums, proof.sig, readTrustedKey(trustedKeyPath));
  const listed = sumFor(proof.sums, basename(file));
  if (!listed) {
    throw new ReleaseRefusedError('CHECKSUM_MISMATCH', `SHA256SUMS lists no ${basename(file)}`);
  }
  const actual = await sha256File(file);
  if (proof.sha256 && proof.sha256.toLowerCase() !== actual) {
    throw new ReleaseRefusedError(
      'CHECKSUM_MISMATCH',
      `${basename(file)} has sha256 ${actual.slice(0, 16)}…, not the ${proof.sha256.slice(0, 16)}… given (truncated or altered download)`,
    );
  }
  if (listed !== actual) {
    throw new ReleaseRefusedError(
      'CHECKSUM_MISMATCH',
      `${basename(file)} has sha256 ${actual.slice(0, 16)}…, SHA256SUMS says ${listed.slice(0, 16)}… (truncated or altered download)`,
    );
  }
  const { manifest, unpackedBytes } = await inspectArchive(file);
  return { manifest, unpackedBytes, sha256: actual };
}

/** Lists a tarball: every entry under one `plexus-VERSION/` folder, no links, no `..`; reads RELEASE. */
export async function inspectArchive(
  file: string,
): Promise<{ manifest: ReleaseManifest; unpackedBytes: number }> {
  const tar = await import('tar');
  let top: string | undefined;
  let manifestText = '';
  let unpackedBytes = 0;
  let refused: Error | undefined;
  try {
    await tar.t({
      file,
      strict: true,
      onReadEntry: (e) => {
        const parts = e.path.split('/').filter(Boolean);
        top ??= parts[0];
        if (parts[0] !== top || parts.includes('..') || e.path.startsWith('/')) {
          refused ??= new ReleaseRefusedError(
            'ARCHIVE_INVALID',
            `entry '${e.path.slice(0, 80)}' is outside the release folder`,
          );
        } else if (e.type !== 'File' && e.type !== 'Directory') {
          refused ??= new ReleaseRefusedError(
            'ARCHIVE_INVALID',
            `entry '${e.path.slice(0, 80)}' is a ${e.type}; a release holds files and folders only`,
          );
        }
        unpackedBytes += e.size ?? 0;
        if (parts.length === 2 && parts[1] === 'RELEASE' && e.type === 'File') {
          e.on('data', (c: Buffer) => {
            if (manifestText.length < 8192) manifestText += c.toString('utf8');
          });
        } else e.resume();
      },
    });
  } catch (err) {
    throw new ReleaseRefusedError(
      'ARCHIVE_INVALID',
      `${basename(file)} is not a readable tar.gz (${(err as Error).message.split('\n')[0]}): truncated or corrupt`,
    );
  }
  if (refused) throw refused;
  if (!manifestText)
    throw new ReleaseRefusedError(
      'ARCHIVE_INVALID',
      `${basename(file)} holds no RELEASE file: not a plexus release`,
    );
  const manifest = parseManifest(manifestText, basename(file));
  if (top !== `plexus-${manifest.version}`) {
    throw new ReleaseRefusedError(
      'ARCHIVE_INVALID',
      `${basename(file)}: folder ${top} does not match version ${manifest.version}`,
    );
  }
  checkPlatform(manifest, basename(file));
  return { manifest, unpackedBytes };
}

/**
 * Unpacks a verified tarball into `releases/VERSION`: first into a hidden folder beside it,
 * renamed when complete, so a half-unpacked release never looks installed. Refuses up front when
 * the file system lacks the room, and cleans up when it fills during the unpack anyway.
 */
export async function unpackRelease(
  file: string,
  releases: string,
  manifest: ReleaseManifest,
  unpackedBytes: number,
): Promise<string> {
  mkdirSync(releases, { recursive: true, mode: 0o755 });
  const neededMb = Math.ceil(unpackedBytes / 1e6);
  const fs = statfsSync(releases);
  if (fs.bavail * fs.bsize < unpackedBytes * 1.05) throw new NoSpaceError(releases, neededMb);
  const dest = join(releases, manifest.version);
  const tmp = join(releases, `.${manifest.version}.partial-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { mode: 0o755 });
  const tar = await import('tar');
  try {
    await tar.x({ file, cwd: tmp, strip: 1, strict: true, preserveOwner: false, noMtime: false });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC' || /ENOSPC/.test(String(err))) {
      throw new NoSpaceError(releases, neededMb);
    }
    throw new ReleaseRefusedError(
      'ARCHIVE_INVALID',
      `cannot unpack ${basename(file)}: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
  return dest;
}
