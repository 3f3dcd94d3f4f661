/**
 * Turning a deploy request's source (a URL or an upload) into an extracted, validated folder in
 * the app's tmp/, ready to become a release by one rename. Nothing here touches the running app
 * or the database; on any error the staging folder is deleted.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { STREAM_CHUNK_BYTES } from './constants.ts';
import {
  displayUrl,
  download,
  receiveUpload,
  type TransferProgress,
  type TransferResult,
} from './download.ts';
import { type ExtractLimits, extractBundle, extractTarStream } from './extract.ts';
import { readManifest } from './manifest.ts';
import { type AppPaths, stagingDir } from './releases.ts';
import type { RunSpecInput } from './spec.ts';

/** Where a bundle comes from. */
export type BundleSource =
  | { kind: 'url'; url: string; sha256?: string }
  | { kind: 'upload'; input: AsyncIterable<unknown>; sha256?: string; bytes?: number };

/** Progress of a deploy, streamed to the caller as data frames. */
export type DeployProgress =
  | { phase: 'download' | 'upload'; bytes: number; total?: number }
  | { phase: 'extract' }
  | { phase: 'start'; release: string }
  | { phase: 'health'; elapsedMs: number; check: string }
  | { phase: 'rollback'; to: string | null };

/** A bundle extracted into staging. */
export interface StagedBundle {
  /** The staging folder (delete it when done). */
  staging: string;
  /** The extracted release root inside it. */
  dir: string;
  /** Shown in `releases`: the URL without credentials or query, or `upload`. */
  source: string;
  transfer: TransferResult;
  manifest: RunSpecInput | undefined;
}

/** Options of staging. */
export interface StageOptions {
  maxBundleBytes?: number;
  idleTimeoutMs?: number;
  limits?: ExtractLimits;
  signal?: AbortSignal;
  onProgress?(p: DeployProgress): void;
}

/** Fetches and extracts a bundle into a new staging folder of the app. */
export async function stageBundle(
  paths: AppPaths,
  source: BundleSource,
  opts: StageOptions = {},
): Promise<StagedBundle> {
  const staging = await stagingDir(paths, 'deploy');
  // A tar.gz is extracted while it arrives (as `curl | tar xz` would); a zip needs the whole
  // file first. Either way the checksum is verified before the release is committed.
  let streamed: Promise<unknown> | undefined;
  try {
    const file = join(staging, 'bundle');
    const dir = join(staging, 'release');
    await mkdir(dir, { mode: 0o700 });
    const phase = source.kind === 'url' ? 'download' : 'upload';
    const common = {
      maxBytes: opts.maxBundleBytes,
      sha256: source.sha256,
      signal: opts.signal,
      onProgress: (p: TransferProgress) => opts.onProgress?.({ phase, ...p }),
      sinkFor: (first: Uint8Array) => {
        if (first.length < 2 || first[0] !== 0x1f || first[1] !== 0x8b) return undefined;
        const pass = new PassThrough({ highWaterMark: STREAM_CHUNK_BYTES });
        streamed = extractTarStream(pass, dir, opts.limits);
        streamed.catch(() => {}); // awaited below; a refusal also stops the transfer
        return pass;
      },
    };
    const transfer =
      source.kind === 'url'
        ? await download(source.url, file, { ...common, idleTimeoutMs: opts.idleTimeoutMs })
        : await receiveUpload(source.input, file, { ...common, total: source.bytes });
    opts.onProgress?.({ phase: 'extract' });
    if (streamed) await streamed;
    else {
      await extractBundle(file, dir, opts.limits);
      // The bundle file is not part of the release; free the space before the app starts.
      await rm(file, { force: true });
    }
    const manifest = await readManifest(dir);
    return {
      staging,
      dir,
      source: source.kind === 'url' ? displayUrl(source.url) : 'upload',
      transfer,
      manifest,
    };
  } catch (err) {
    await streamed?.catch(() => {});
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}
