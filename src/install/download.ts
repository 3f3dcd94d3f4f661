/**
 * `plexus upgrade --url`: a release downloaded with a size cap, refused when it is shorter than
 * its Content-Length (a truncated download) or longer than a release may be. Its checksum and
 * signature are checked afterwards like a local file's (release-archive.ts).
 */
import { createWriteStream, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ReleaseRefusedError } from './errors.ts';

/** Downloads `url` to `dest`, refusing more than `max` bytes or fewer than announced. */
export async function downloadRelease(url: string, dest: string, max: number): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(600_000) });
  } catch (err) {
    throw new ReleaseRefusedError('DOWNLOAD_FAILED', `cannot download ${url}: ${(err as Error).message}`);
  }
  if (!res.ok || !res.body)
    throw new ReleaseRefusedError('DOWNLOAD_FAILED', `cannot download ${url}: HTTP ${res.status}`);
  const announced = Number(res.headers.get('content-length') ?? Number.NaN);
  if (announced > max)
    throw new ReleaseRefusedError(
      'RELEASE_TOO_LARGE',
      `${url} is ${announced} bytes, more than the ${Math.ceil(max / 1048576)} MB a release may be`,
    );
  let got = 0;
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
  body.on('data', (c: Buffer) => {
    got += c.length;
    if (got > max)
      body.destroy(
        new ReleaseRefusedError(
          'RELEASE_TOO_LARGE',
          `${url} is more than the ${Math.ceil(max / 1048576)} MB a release may be`,
        ),
      );
  });
  try {
    await pipeline(body, createWriteStream(dest, { mode: 0o600 }));
  } catch (err) {
    rmSync(dest, { force: true });
    throw err instanceof ReleaseRefusedError
      ? err
      : new ReleaseRefusedError(
          'DOWNLOAD_FAILED',
          `download of ${url} failed after ${got} bytes: ${(err as Error).message} (truncated)`,
        );
  }
  if (Number.isFinite(announced) && got !== announced) {
    rmSync(dest, { force: true });
    throw new ReleaseRefusedError(
      'DOWNLOAD_FAILED',
      `download of ${url} is truncated: ${got} of ${announced} bytes`,
    );
  }
}
