/**
 * The key material under DATA/keys (docs/architecture.md, Trust model), each file mode 0600:
 * node.key (libp2p Ed25519 identity, protobuf), swarm.key (pnet v1 format), master.key
 * (32 random bytes for app secrets), network.json, and admin.key on the admin's node.
 * Written with node:crypto only; the libp2p key object is built by `createMesh` when needed.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { DataPaths } from '../config/paths.ts';
import * as z from '../core/zod.ts';
import {
  b64u,
  fromB64u,
  generateSigner,
  readKeyFile,
  type Signer,
  signerFromSeed,
} from '../crypto/ed25519.ts';
import { NetworkSetupError } from './errors.ts';

/** Contents of network.json. */
export const networkFileSchema = z.strictObject({
  /** `plx-…`, derived from the admin public key. */
  networkId: z.string().regex(/^plx-[a-z0-9]{16}$/),
  /** Admin public key, base64url raw. */
  adminPublicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  /** Multiaddrs to dial when no member address is known (from the token, or our own on init). */
  bootstrap: z.array(z.string().max(512)).max(64),
  /** When this node created or joined the network (ms). */
  createdAt: z.number().int(),
  /** Which swarm key swarm.key holds: 0 from init, +1 for each `plexus rotate-swarm-key`. */
  swarmEpoch: z.number().int().min(0).optional(),
  /** Members' join doors, where a node that missed a rotation asks for the key (swarm-store.ts). */
  doors: z.array(z.string().max(512)).max(32).optional(),
});

/** Parsed network.json. */
export type NetworkFile = z.infer<typeof networkFileSchema>;

/** The 32-byte Ed25519 node identity as stored in node.key (libp2p protobuf PrivateKey). */
export interface NodeIdentity {
  seed: Buffer;
  publicKey: Buffer;
  /** libp2p protobuf encoding, what `privateKeyFromProtobuf` takes. */
  protobuf: Buffer;
  signer: Signer;
}

// libp2p's PrivateKey protobuf for Ed25519: field 1 (Type) = 1, field 2 (Data) = 64 bytes seed||pub.
const ED25519_PB_HEADER = Buffer.from([0x08, 0x01, 0x12, 0x40]);

/** Creates a new node identity. */
export function generateNodeIdentity(): NodeIdentity {
  const { signer, seed } = generateSigner();
  return identityFrom(seed, signer.publicKey);
}

function identityFrom(seed: Buffer, publicKey: Buffer): NodeIdentity {
  return {
    seed,
    publicKey,
    protobuf: Buffer.concat([ED25519_PB_HEADER, seed, publicKey]),
    signer: signerFromSeed(seed, publicKey),
  };
}

/** Decodes node.key contents. */
export function parseNodeKey(bytes: Buffer): NodeIdentity {
  if (bytes.length !== 68 || !bytes.subarray(0, 4).equals(ED25519_PB_HEADER)) {
    throw new NetworkSetupError(
      'NODE_KEY_INVALID',
      'node.key is not an Ed25519 libp2p key; restore it from a backup or re-join',
    );
  }
  return identityFrom(Buffer.from(bytes.subarray(4, 36)), Buffer.from(bytes.subarray(36, 68)));
}

/** Formats a 32-byte pre-shared key in the libp2p swarm key v1 format. */
export function formatSwarmKey(psk: Buffer): string {
  return `/key/swarm/psk/1.0.0/\n/base16/\n${psk.toString('hex')}\n`;
}

/** Extracts the 32-byte key from swarm key v1 text. */
export function parseSwarmKey(text: string): Buffer {
  const lines = text.split(/\r?\n/);
  if (
    lines[0] !== '/key/swarm/psk/1.0.0/' ||
    lines[1] !== '/base16/' ||
    !/^[0-9a-fA-F]{64}$/.test(lines[2] ?? '')
  ) {
    throw new NetworkSetupError(
      'SWARM_KEY_INVALID',
      'swarm.key is not a libp2p swarm key v1; re-join the network',
    );
  }
  return Buffer.from(lines[2], 'hex');
}

/** Everything `init` or `join` writes. */
export interface NewNodeKeys {
  identity: NodeIdentity;
  psk: Buffer;
  network: NetworkFile;
  /** Only on init. */
  admin?: { signer: Signer; seed: Buffer };
}

/**
 * Writes the key files into `paths.keys` atomically: everything goes to a temporary folder
 * first, then one rename, so a crash never leaves half a network behind. Refuses to overwrite.
 */
export function writeNodeKeys(paths: DataPaths, keys: NewNodeKeys): void {
  if (existsSync(paths.network) || existsSync(paths.nodeKey)) {
    throw new NetworkSetupError(
      'ALREADY_INITIALISED',
      `${paths.dataDir} already belongs to a network; use another --data-dir or remove it first`,
      'conflict',
    );
  }
  mkdirSync(paths.dataDir, { recursive: true, mode: 0o700 });
  const tmp = `${paths.keys}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  const put = (name: string, data: string | Buffer) => writeFileSync(`${tmp}/${name}`, data, { mode: 0o600 });
  put('node.key', keys.identity.protobuf);
  put('swarm.key', formatSwarmKey(keys.psk));
  put('master.key', randomBytes(32));
  put('network.json', `${JSON.stringify(keys.network, null, 2)}\n`);
  if (keys.admin) {
    put(
      'admin.key',
      `${JSON.stringify({ type: 'plexus-ed25519', kid: keys.admin.signer.kid, publicKey: b64u(keys.admin.signer.publicKey), secretKey: b64u(keys.admin.seed) }, null, 2)}\n`,
    );
  }
  if (existsSync(paths.keys)) {
    // An empty keys/ left by an earlier failed attempt.
    renameSync(paths.keys, `${paths.keys}.old-${Date.now()}`);
  }
  renameSync(tmp, paths.keys);
  chmodSync(paths.keys, 0o700);
}

/** The loaded key material of a node. */
export interface NodeKeys {
  identity: NodeIdentity;
  psk: Buffer;
  /** network.json's `swarmEpoch` (0 when absent). */
  swarmEpoch: number;
  network: NetworkFile;
  adminPublicKey: Buffer;
  /** Present only where admin.key exists. */
  admin?: Signer;
}

function readSmall(path: string, what: string, max = 64 * 1024): Buffer {
  try {
    const buf = readFileSync(path);
    if (buf.length > max) throw new Error(`larger than ${max} bytes`);
    return buf;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new NetworkSetupError(
        'NOT_INITIALISED',
        `${what} missing (${path}); run 'plexus init' or 'plexus join' first`,
      );
    }
    throw new NetworkSetupError('KEY_UNREADABLE', `cannot read ${path}: ${(err as Error).message}`);
  }
}

/** Loads and validates every key file of a node. */
export function loadNodeKeys(paths: DataPaths): NodeKeys {
  const identity = parseNodeKey(readSmall(paths.nodeKey, 'node key'));
  const swarmText = readSmall(paths.swarmKey, 'swarm key').toString('utf8');
  const psk = parseSwarmKey(swarmText);
  let network: NetworkFile;
  try {
    network = networkFileSchema.parse(JSON.parse(readSmall(paths.network, 'network.json').toString('utf8')));
  } catch (err) {
    if (err instanceof NetworkSetupError) throw err;
    throw new NetworkSetupError('NETWORK_FILE_INVALID', `${paths.network} is corrupt; restore it or re-join`);
  }
  const keys: NodeKeys = {
    identity,
    psk,
    swarmEpoch: network.swarmEpoch ?? 0,
    network,
    adminPublicKey: fromB64u(network.adminPublicKey),
  };
  if (existsSync(paths.adminKey)) {
    const admin = readKeyFile(paths.adminKey);
    if (!admin.publicKey.equals(keys.adminPublicKey)) {
      throw new NetworkSetupError('ADMIN_KEY_MISMATCH', `${paths.adminKey} is not this network's admin key`);
    }
    keys.admin = admin;
  }
  return keys;
}

/** Rewrites network.json (e.g. to refresh bootstrap addresses) atomically. */
export function saveNetworkFile(paths: DataPaths, network: NetworkFile): void {
  const tmp = `${paths.network}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(network, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, paths.network);
}
