/**
 * A release sent over the mesh (`plexus upgrade --node all|NAME|tag:T --file PATH`): the
 * `node.upgrade` action receives the tarball as signed input frames, checks it against this
 * node's own trusted release key before anything else, and hands it to an upgrader that runs
 * outside the agent (a transient systemd unit: the agent's own unit cannot write /opt, and the
 * upgrader must outlive the agent it restarts). `node.upgrade.status` reports how it went.
 */
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type ActionDef, defineAction } from '../core/actions.ts';
import * as z from '../core/zod.ts';
import { DEFAULT_ETC, MAX_RELEASE_BYTES, MAX_SUMS_BYTES } from './constants.ts';
import { ReleaseRefusedError } from './errors.ts';
import { verifyRelease } from './release-archive.ts';
import { readTrustedKey, verifySums } from './release-signature.ts';

/** What the upgrader writes as it goes (`plexus upgrade --status-file`). */
export interface UpgradeStatus {
  state: 'running' | 'ok' | 'rolled_back' | 'failed';
  from?: string;
  to?: string;
  message?: string;
  downtimeMs?: number;
  at: number;
}

/** Where the fleet actions keep releases in transit and how they start the upgrader. */
export interface FleetUpgradeInit {
  /** DATA/upgrades: received tarballs and the status file. */
  dir: string;
  /** The trusted release key (ETC/release.pub). */
  releaseKey: string;
  /** The running version. */
  version: string;
  /** The `plexus` program of the running release. */
  plexus: string;
}

/** One piece of a release sent over the mesh: a command's input stays a few MB. */
export const PIECE_BYTES = 4 * 1024 * 1024;

const sizeOf = (p: string) => {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
};

const FILE_RE = /^plexus-[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]{1,40})?-linux-[a-z0-9]{1,16}\.tar\.gz$/;

/** Starts the upgrader outside the agent: a transient unit under systemd, else a detached process. */
export function launchUpgrader(plexus: string, file: string, statusFile: string): void {
  const args = [plexus, 'upgrade', '--file', file, '--status-file', statusFile];
  const argv = existsSync('/run/systemd/system')
    ? // Two seconds on: the agent's reply must reach the operator before the upgrade restarts it.
      [
        'systemd-run',
        `--unit=plexus-upgrade-${Date.now()}`,
        '--on-active=2s',
        '--collect',
        '--quiet',
        '--',
        ...args,
      ]
    : args;
  spawn(argv[0], argv.slice(1), { detached: true, stdio: 'ignore' }).unref();
}

/** Reads the status file; undefined when no upgrade ran here. */
export function readStatus(file: string): UpgradeStatus | undefined {
  try {
    const text = readFileSync(file, 'utf8');
    return text.length < 8192 ? (JSON.parse(text) as UpgradeStatus) : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the status file whole, keeping what the last one said (from, to) unless `s` says otherwise. */
export function writeStatus(file: string, s: Omit<UpgradeStatus, 'at'>): void {
  const merged = { ...readStatus(file), ...s, at: Date.now() };
  writeFileSync(`${file}.tmp`, JSON.stringify(merged), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** The fleet upgrade actions; `launch` is launchUpgrader (tests pass their own). */
export function fleetUpgradeActions(init: FleetUpgradeInit, launch = launchUpgrader): ActionDef[] {
  const statusFile = join(init.dir, 'status.json');
  return [
    defineAction({
      name: 'node.upgrade',
      describe: 'receive a signed release and upgrade this node to it (health gated, rolled back on failure)',
      access: 'admin',
      // The release travels in pieces of at most PIECE_BYTES, one command each, appended in order:
      // a command's input stays small, and an interrupted transfer resumes at the size received.
      args: z.object({
        file: z.string().regex(FILE_RE, 'a release tarball name: plexus-VERSION-linux-ARCH.tar.gz'),
        sums: z.string().min(1).max(MAX_SUMS_BYTES),
        sig: z.string().min(1).max(1024),
        total: z.number().int().positive().max(MAX_RELEASE_BYTES),
        offset: z.number().int().nonnegative().max(MAX_RELEASE_BYTES),
        bytes: z.number().int().positive().max(PIECE_BYTES),
      }),
      handler: async ({ file, sums, sig, total, offset, bytes }, ctx) => {
        // Checked before a byte is stored: a release not signed by this node's key goes no further.
        verifySums(Buffer.from(sums), sig, readTrustedKey(init.releaseKey));
        if (offset + bytes > total) {
          throw new ReleaseRefusedError(
            'RELEASE_TOO_LARGE',
            `a piece at ${offset} of ${bytes} bytes passes the ${total} announced`,
          );
        }
        const running = readStatus(statusFile);
        if (offset === 0 && running?.state === 'running' && Date.now() - running.at < 180_000) {
          throw new ReleaseRefusedError(
            'ARCHIVE_INVALID',
            `an upgrade to ${running.to} is already running here`,
          );
        }
        mkdirSync(init.dir, { recursive: true, mode: 0o700 });
        const dest = join(init.dir, file);
        const partial = `${dest}.partial`;
        const have = offset === 0 ? 0 : sizeOf(partial);
        if (have !== offset) {
          throw new ReleaseRefusedError(
            'DOWNLOAD_FAILED',
            `this node holds ${have} bytes of ${file}, not ${offset}: resend from ${have}`,
          );
        }
        const piece: Buffer[] = [];
        let got = 0;
        for await (const frame of ctx.input) {
          const f = frame as { chunk?: string; end?: boolean };
          if (f.end) break;
          if (typeof f.chunk !== 'string')
            throw new ReleaseRefusedError('ARCHIVE_INVALID', 'an upload frame holds no chunk');
          const b = Buffer.from(f.chunk, 'base64');
          got += b.length;
          if (got > bytes)
            throw new ReleaseRefusedError(
              'RELEASE_TOO_LARGE',
              `the piece is larger than the ${bytes} bytes announced`,
            );
          piece.push(b);
        }
        if (got !== bytes)
          throw new ReleaseRefusedError(
            'DOWNLOAD_FAILED',
            `the piece is truncated: ${got} of ${bytes} bytes`,
          );
        if (offset === 0) writeFileSync(partial, Buffer.concat(piece), { mode: 0o600 });
        else appendFileSync(partial, Buffer.concat(piece));
        if (offset + bytes < total) return { received: offset + bytes };
        renameSync(partial, dest);
        writeFileSync(join(init.dir, 'SHA256SUMS'), sums);
        writeFileSync(join(init.dir, 'SHA256SUMS.sig'), sig);
        try {
          const { manifest } = await verifyRelease(dest, { sums: Buffer.from(sums), sig }, init.releaseKey);
          if (manifest.version === init.version) {
            throw new ReleaseRefusedError(
              'ARCHIVE_INVALID',
              `${manifest.version} is already the running version`,
            );
          }
          writeStatus(statusFile, { state: 'running', from: init.version, to: manifest.version });
          launch(init.plexus, dest, statusFile);
          return { from: init.version, to: manifest.version };
        } catch (err) {
          rmSync(dest, { force: true });
          throw err;
        }
      },
    }),
    defineAction({
      name: 'node.upgrade.status',
      describe: 'the running version and how the last upgrade went',
      access: 'read',
      args: z.object({}),
      handler: async () => ({ version: init.version, last: readStatus(statusFile) ?? null }),
    }),
  ];
}

/**
 * The fleet actions' settings for an agent: releases in transit under DATA/upgrades, the trusted
 * key beside the config when PLEXUS_CONFIG names one (a release install), and the `plexus` of
 * the running installation (bin/plexus starts the agent as `node …/src/cli/boot.mjs`).
 */
export function fleetUpgradeInit(
  paths: { dataDir: string; config: string },
  version: string,
): FleetUpgradeInit {
  const etc = process.env.PLEXUS_CONFIG ? dirname(paths.config) : DEFAULT_ETC;
  const root = resolve(dirname(process.argv[1] ?? '.'), '..', '..');
  return {
    dir: join(paths.dataDir, 'upgrades'),
    releaseKey: join(etc, 'release.pub'),
    version,
    plexus: join(root, 'bin', 'plexus'),
  };
}
