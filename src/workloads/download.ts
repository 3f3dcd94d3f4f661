/**
 * Getting a bundle onto disk: a streaming HTTP(S) download or an upload arriving as input frames.
 * Both stream straight to a file with a byte limit, hash as they go, and report progress, so a
 * 500 MB bundle never sits in memory.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { http, https } from '../core/http-modules.ts';
import { DOWNLOAD_IDLE_TIMEOUT_MS, MAX_BUNDLE_BYTES, STREAM_CHUNK_BYTES } from './constants.ts';
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
  /**
   * Called with the first chunk: return a stream to send the bytes to instead of the file
   * (used to extract a tar.gz while it downloads). Its errors end the transfer.
   */
  sinkFor?(first: Uint8Array): Writable | undefined;
}

/** What was written. */
export interface TransferResult {
  bytes: number;
  sha256: string;
}

/** Redirects followed before giving up (artifact stores redirect once or twice to a CDN). */
const MAX_REDIRECTS = 5;

/**
 * GET with node:http(s), following redirects: it streams faster than fetch and lets us see
 * the raw socket errors. Resolves with the final response, unread.
 */
function openGet(
  url: URL,
  signal: AbortSignal,
  redirects: number,
  pinned: boolean,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https().get : http.get)(url, { signal, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location) {
        res.resume();
        if (redirects <= 0)
          return reject(
            new DownloadError('DOWNLOAD_HTTP', `GET ${displayUrl(url.href)}: too many redirects`),
          );
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          return reject(new DownloadError('DOWNLOAD_HTTP', `GET ${displayUrl(url.href)}: bad redirect`));
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          return reject(
            new DownloadError('DOWNLOAD_HTTP', `GET ${displayUrl(url.href)}: redirect to ${next.protocol}`),
          );
        }
        // TLS was what vouched for the bytes: a hop to plain http would let anyone on the path
        // swap them, unless a sha256 pins them (issue 13).
        if (url.protocol === 'https:' && next.protocol === 'http:' && !pinned) {
          return reject(
            new DownloadError(
              'INSECURE_REDIRECT',
              `GET ${displayUrl(url.href)} redirects to plain http (${displayUrl(next.href)}); pass --sha256 HEX to pin the bundle, or use a URL that stays on https`,
              'invalid',
            ),
          );
        }
        return openGet(next, signal, redirects - 1, pinned).then(resolve, reject);
      }
      resolve(res);
    });
    req.once('error', reject);
  });
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
  if (parsed.protocol === 'http:' && !opts.sha256) {
    throw new DownloadError(
      'INSECURE_URL',
      `${shown} is plain http, so the bundle could be swapped on the way; pass --sha256 HEX (a webhook: "sha256" in its body) or use https`,
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
    let res: IncomingMessage;
    try {
      res = await openGet(parsed, ctrl.signal, MAX_REDIRECTS, !!opts.sha256);
    } catch (err) {
      throw fetchFailure(err, shown, timedOut, idleMs);
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      res.destroy();
      throw new DownloadError(
        status === 404 ? 'DOWNLOAD_NOT_FOUND' : 'DOWNLOAD_HTTP',
        `GET ${shown} answered ${status} ${res.statusMessage ?? ''}; check the URL`.replace(' ;', ';'),
        status >= 400 && status < 500 ? 'invalid' : 'unavailable',
      );
    }
    const declared = Number(res.headers['content-length'] ?? Number.NaN);
    if (declared > maxBytes) {
      res.destroy();
      throw tooLarge(maxBytes);
    }
    touch();
    const chunks = (async function* () {
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          touch();
          yield chunk;
        }
      } catch (err) {
        throw fetchFailure(err, shown, timedOut, idleMs);
      }
      // A body cut short of its content-length is a failed download, not a smaller bundle.
      if (!res.complete) throw fetchFailure(new Error('connection closed early'), shown, timedOut, idleMs);
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
  let out: Writable | undefined;
  let bytes = 0;
  let lastReport = 0;
  let piece: Buffer | undefined;
  let filled = 0;
  try {
    for await (const chunk of chunks) {
      if (!out) {
        // The first bytes decide where the rest goes: straight into an extractor (tar.gz,
        // extracted while it downloads, as `curl | tar` does), or into the file (zip).
        out = opts.sinkFor?.(chunk) ?? createWriteStream(dest, { flags: 'wx', mode: 0o600 });
      }
      bytes += chunk.length;
      if (bytes > opts.maxBytes) throw tooLarge(opts.maxBytes);
      hash.update(chunk);
      // Passed on in STREAM_CHUNK_BYTES pieces, not in the 64 KiB socket reads they arrive in:
      // one copy of the bytes costs less than the hand-offs of 16 times more pieces (constants.ts).
      for (let off = 0; off < chunk.length; ) {
        piece ??= Buffer.allocUnsafe(STREAM_CHUNK_BYTES);
        const n = Math.min(chunk.length - off, piece.length - filled);
        piece.set(chunk.subarray(off, off + n), filled);
        filled += n;
        off += n;
        if (filled === piece.length) {
          const full = piece;
          piece = undefined;
          filled = 0;
          if (!out.write(full)) await drained(out);
        }
      }
      const now = Date.now();
      if (opts.onProgress && now - lastReport >= 200) {
        lastReport = now;
        opts.onProgress({ bytes, total });
      }
    }
    out ??= createWriteStream(dest, { flags: 'wx', mode: 0o600 });
    if (piece && filled) out.write(piece.subarray(0, filled));
    out.end();
    await finished(out);
  } catch (err) {
    out?.destroy();
    throw err;
  }
  opts.onProgress?.({ bytes, total });
  const sha256 = hash.digest('hex');
  if (opts.sha256 && opts.sha256.toLowerCase() !== sha256)
    throw new ChecksumMismatchError(opts.sha256.toLowerCase(), sha256);
  return { bytes, sha256 };
}

/** Waits for room in `w`; a sink that was destroyed (the extractor refused the archive) stops the transfer. */
async function drained(w: Writable): Promise<void> {
  if (w.destroyed)
    throw w.errored ?? new DownloadError('SINK_CLOSED', 'the bundle could not be written', 'invalid');
  await new Promise<void>((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
  if (w.destroyed && w.errored) throw w.errored;
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
  const e = err as { code?: string; cause?: { code?: string; message?: string } };
  const cause = e?.code ? { code: e.code, message: (err as Error).message } : e?.cause;
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
