/**
 * The swarm key on disk across rotations (docs/mesh.md, Rotating the swarm key). Three files
 * under DATA/keys change, each written whole to a temporary file, flushed and renamed, so a
 * crash leaves either the old or the new version of each:
 * - `swarm.key`: the key new connections use (pnet v1 text, what `loadNodeKeys` reads);
 * - `swarm-rotation.json`: the admin's record of that key (`current`), and a key received but
 *   not yet in use with its record (`next`);
 * - `network.json`: `swarmEpoch` (the epoch of swarm.key), and `doors`, members' join doors to
 *   ask for the key after missing a rotation.
 * A switch writes swarm.key first and the record last; a crash in between is finished on the
 * next load, which recognises the new key in swarm.key by the keyId of the pending record.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DataPaths } from '../config/paths.ts';
import * as z from '../core/zod.ts';
import type { SignedBlob } from '../crypto/signed.ts';
import { MAX_ROTATION_BYTES } from './constants.ts';
import { formatSwarmKey, type NetworkFile, networkFileSchema } from './keys.ts';
import { keyIdOf, type VerifiedKey, verifyKeyGrant } from './rotation-record.ts';

const blobSchema = z.strictObject({ p: z.string().max(MAX_ROTATION_BYTES), s: z.string().max(128) });
const stateSchema = z.strictObject({
  current: blobSchema.optional(),
  next: z.strictObject({ psk: z.string().regex(/^[0-9a-f]{64}$/), rotation: blobSchema }).optional(),
});

/** The swarm key as loaded: the one in use, its record, and a pending one. */
export interface SwarmKeyState {
  psk: Buffer;
  epoch: number;
  /** The admin's record of `psk` (absent for epoch 0, and if the file was lost). */
  current?: SignedBlob;
  /** A newer key waiting for its `switchAt`. */
  next?: VerifiedKey;
  /** Problems found on load, for the log (a corrupt state file is not fatal: rekey heals it). */
  warnings: string[];
}

/** Writes a file so that after a crash it holds either its old or its new contents. */
export function writeDurably(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

function readNetwork(paths: DataPaths): NetworkFile {
  return networkFileSchema.parse(JSON.parse(readFileSync(paths.network, 'utf8')));
}

function writeNetwork(paths: DataPaths, change: Partial<NetworkFile>): void {
  writeDurably(paths.network, `${JSON.stringify({ ...readNetwork(paths), ...change }, null, 2)}\n`);
}

function writeState(paths: DataPaths, state: { current?: SignedBlob; next?: VerifiedKey }): void {
  const body = {
    ...(state.current ? { current: state.current } : {}),
    ...(state.next ? { next: { psk: state.next.psk.toString('hex'), rotation: state.next.rotation } } : {}),
  };
  writeDurably(paths.swarmRotation, `${JSON.stringify(body, null, 2)}\n`);
}

/**
 * Reads the swarm key, its epoch and a pending key, finishing a switch that a crash interrupted.
 * `psk`/`epoch` are what loadNodeKeys read; only a record signed by `adminPublicKey` counts.
 */
export function loadSwarmState(
  paths: DataPaths,
  adminPublicKey: Uint8Array,
  psk: Buffer,
  epoch: number,
): SwarmKeyState {
  const state: SwarmKeyState = { psk, epoch, warnings: [] };
  if (!existsSync(paths.swarmRotation)) return state;
  let file: z.infer<typeof stateSchema>;
  try {
    const text = readFileSync(paths.swarmRotation, 'utf8');
    if (text.length > 4 * MAX_ROTATION_BYTES) throw new Error('too large');
    file = stateSchema.parse(JSON.parse(text));
  } catch (err) {
    state.warnings.push(`ignoring ${paths.swarmRotation}: ${(err as Error).message.split('\n')[0]}`);
    return state;
  }
  if (file.current) state.current = file.current;
  if (file.next) {
    try {
      const next = verifyKeyGrant(file.next, adminPublicKey, -1);
      if (next.payload.keyId === keyIdOf(psk)) {
        // swarm.key already holds it: the switch was cut short after its first write.
        state.epoch = next.payload.epoch;
        state.current = next.rotation;
        commitSwitch(paths, next);
      } else if (next.payload.epoch > epoch) state.next = next;
    } catch (err) {
      state.warnings.push(`ignoring the pending swarm key: ${(err as Error).message}`);
    }
  }
  return state;
}

/** Keeps a key that is not in use yet (with the record of the key in use). */
export function savePending(paths: DataPaths, current: SignedBlob | undefined, next: VerifiedKey): void {
  writeState(paths, { current, next });
}

/** Makes `next` the key on disk: swarm.key, then network.json's epoch, then its record. */
export function commitSwitch(paths: DataPaths, next: VerifiedKey): void {
  writeDurably(paths.swarmKey, formatSwarmKey(next.psk));
  writeNetwork(paths, { swarmEpoch: next.payload.epoch });
  writeState(paths, { current: next.rotation });
}

/** The join doors kept in network.json. */
export function loadDoors(paths: DataPaths): string[] {
  try {
    return readNetwork(paths).doors ?? [];
  } catch {
    return [];
  }
}

/** Replaces the join doors kept in network.json. */
export function saveDoors(paths: DataPaths, doors: string[]): void {
  writeNetwork(paths, { doors });
}
