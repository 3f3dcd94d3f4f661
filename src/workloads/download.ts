/**
 * Getting a bundle onto disk: a streaming HTTP(S) download or an upload arriving as input frames.
 * Both stream straight to a file with a byte limit, hash as they go, and report progress, so a
 * 500 MB bundle never sits in memory.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { DOWNLOAD_IDLE_TIMEOUT_MS, MAX_BUNDLE_BYTES } from './constants.ts';
import { ChecksumMismatchError, DownloadError } from './errors.ts';

/** Progress of a transfer. */
export interface TransferProgress {
  bytes: number;
  /** Declared size, when known. */
  total?: number;
}

/** Options of a transfer. */
export interface TransferOptions {
  maxBytes?: number;
  /** Expected sha256 (hex); a mismatch fails the transfer. */
  sha256?: string;
  signal?: AbortSignal;
  onProgress?(p: TransferProgress): void;
}

/** What was written. */
export interface TransferResult {
  bytes: number;
  sha256: string;
}

/** The URL with credentials and query removed: safe to log, store and show. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

/** Downloads `url` into `dest`. */
export async function download(
  url: string,
  dest: string,
  opts: TransferOptions & { idleTimeoutMs?: number } = {},
): Promise<TransferResult> {
  const maxBytes = opts.maxBytes ?? MAX_BUNDLE_BYTES;
  const shown = displayUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DownloadError(
      'BAD_URL',
      `'${url.slice(0, 100)}' is not a URL; pass --url http(s)://…`,
      'invalid',
    );
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new DownloadError(
      'BAD_URL',
      `only http and https URLs can be deployed, not ${parsed.protocol}`,
      'invalid',
    );
  }
  const idleMs = opts.idleTimeoutMs ?? DOWNLOAD_IDLE_TIMEOUT_MS;
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  let idle = setTimeout(expire, idleMs);
  function expire() {
    timedOut = true;
    ctrl.abort();
  }
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(expire, idleMs);
  };
  try {
    let res: Response;
    try {
      res = await fetch(parsed, { signal: ctrl.signal, redirect: 'follow' });
    } catch (err) {
      throw fetchFailure(err, shown, timedOut, idleMs);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => {});
      throw new DownloadError(
        res.status === 404 ? 'DOWNLOAD_NOT_FOUND' : 'DOWNLOAD_HTTP',
        `GET ${shown} answered ${res.status} ${res.statusText}; check the URL`,
        res.status >= 400 && res.status < 500 ? 'invalid' : 'unavailable',
      );
    }
    const declared = Number(res.headers.get('content-length') ?? Number.NaN);
    if (declared > maxBytes) {
      await res.body.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    touch();
    const chunks = (async function* () {
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          touch();
          yield chunk;
        }
      } catch (err) {
        throw fetchFailure(err, shown, timedOut, idleMs);
      }
    })();
    return await writeStreamed(
      chunks,
      dest,
      { ...opts, maxBytes },
      Number.isFinite(declared) ? declared : undefined,
    );
  } finally {
    clearTimeout(idle);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Receives an upload from input frames: `{chunk: base64}` any number of times, then
 * `{end: true}`. This is how `deploy --dir` sends its packed directory over the control socket,
 * and how the HTTP API and the mesh will carry it for remote deploys.
 */
export async function receiveUpload(
  input: AsyncIterable<unknown>,
  dest: string,
  opts: TransferOptions & { total?: number } = {},
): Promise<TransferResult> {
  const maxBytes = opts.maxBytes ?? MAX_BUNDLE_BYTES;
  let ended = false;
  // Iterated by hand: leaving a for-await early would call return() on the input, and on the
  // control socket that destroys the connection before the result is sent.
  const frames = input[Symbol.asyncIterator]();
  const chunks = (async function* () {
    for (;;) {
      const next = await frames.next();
      if (next.done) return;
      const f = next.value as { chunk?: unknown; end?: unknown };
      if (f && f.end === true) {
        ended = true;
        return;
      }
      if (!f || typeof f.chunk !== 'string') {
        throw new DownloadError(
          'BAD_UPLOAD',
          'upload frames must be {chunk: base64} then {end: true}',
          'invalid',
        );
      }
      yield Buffer.from(f.chunk, 'base64');
    }
  })();
  const result = await writeStreamed(chunks, dest, { ...opts, maxBytes }, opts.total);
  if (!ended)
    throw new DownloadError('UPLOAD_INCOMPLETE', 'the upload stopped before its end; try again', 'invalid');
  return result;
}

async function writeStreamed(
  chunks: AsyncIterable<Uint8Array>,
  dest: string,
  opts: TransferOptions & { maxBytes: number },
  total: number | undefined,
): Promise<TransferResult> {
  const hash = createHash('sha256');
  const out: WriteStream = createWriteStream(dest, { flags: 'wx', mode: 0o600 });
  let bytes = 0;
  let lastReport = 0;
  try {
    await once(out, 'open');
    for await (const chunk of chunks) {
      bytes += chunk.length;
      if (bytes > opts.maxBytes) throw tooLarge(opts.maxBytes);
      hash.update(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
      const now = Date.now();
      if (opts.onProgress && now - lastReport >= 200) {
        lastReport = now;
        opts.onProgress({ bytes, total });
      }
    }
    out.end();
    await once(out, 'finish');
  } catch (err) {
    out.destroy();
    throw err;
  }
  opts.onProgress?.({ bytes, total });
  const sha256 = hash.digest('hex');
  if (opts.sha256 && opts.sha256.toLowerCase() !== sha256)
    throw new ChecksumMismatchError(opts.sha256.toLowerCase(), sha256);
  return { bytes, sha256 };
}

function tooLarge(maxBytes: number): DownloadError {
  return new DownloadError(
    'BUNDLE_TOO_LARGE',
    `bundle is larger than ${maxBytes} bytes; make it smaller`,
    'too_large',
  );
}

function fetchFailure(err: unknown, shown: string, timedOut: boolean, idleMs: number): DownloadError {
  if (err instanceof DownloadError) return err;
  if (timedOut) {
    return new DownloadError(
      'DOWNLOAD_TIMEOUT',
      `GET ${shown} sent nothing for ${idleMs / 1000} s; check the server and try again`,
    );
  }
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const why =
    cause?.code === 'ECONNREFUSED'
      ? 'connection refused'
      : cause?.code === 'ENOTFOUND'
        ? 'host not found'
        : (cause?.message ?? (err as Error)?.message ?? 'failed');
  return new DownloadError(
    'DOWNLOAD_FAILED',
    `GET ${shown} failed: ${why}; check the URL and that the server is up`,
  );
}
