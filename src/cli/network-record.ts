/**
 * Which network an operator key belongs to: the network's admin public key, against which the
 * remote CLI checks every agent it talks to (remote-client.ts, docs/commands.md). It is found,
 * in this order:
 * 1. `KEY.network`, written by `plexus operator keygen --admin` or `plexus operator use`;
 * 2. `network.json` beside the key, when the key is a node's `keys/admin.key`;
 * 3. `DATA/keys/network.json` of this machine's own data dir.
 * A file that exists but is invalid, oversized, or writable by another user is an error, never
 * skipped: a planted record would decide whom the CLI trusts.
 */
import {
  chmodSync,
  closeSync,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { b64u, fromB64u } from '../crypto/ed25519.ts';
import { networkIdOf } from '../mesh/token.ts';
import { AdminKeyUnknownError, NetworkRecordError, UsageError } from './errors.ts';

/** The admin key of the network an operator key talks to, and where it was learnt. */
export interface NetworkTrust {
  adminPublicKey: Buffer;
  networkId: string;
  /** The file it came from, for error messages. */
  source: string;
}

/** What `KEY.network` holds (mode 0644: it is public, but only its owner may change it). */
interface NetworkRecord {
  type: 'plexus-network';
  networkId: string;
  adminPublicKey: string;
}

/** A record is under 200 bytes; network.json holds up to 64 bootstrap addresses of 512. */
const MAX_RECORD_BYTES = 4 * 1024;
const MAX_NETWORK_FILE_BYTES = 64 * 1024;
const B64U_KEY = /^[A-Za-z0-9_-]{43}$/;

/** The record file of an operator key. */
export function recordPathOf(keyFile: string): string {
  return `${keyFile}.network`;
}

/**
 * The network trust for an operator key, from its record, a network.json beside it, or this
 * machine's data dir; throws AdminKeyUnknownError, naming the command that records it, if none.
 */
export function networkTrustOf(keyFile: string, dataDir: string): NetworkTrust {
  const record = readTrusted(recordPathOf(keyFile), MAX_RECORD_BYTES);
  if (record !== undefined) return parseNetworkText(record, recordPathOf(keyFile));
  for (const file of [join(dirname(keyFile), 'network.json'), join(dataDir, 'keys', 'network.json')]) {
    const text = readTrusted(file, MAX_NETWORK_FILE_BYTES);
    if (text !== undefined) return parseNetworkText(text, file);
  }
  throw new AdminKeyUnknownError(
    `no admin key is known for ${keyFile}, so the agents it talks to cannot be checked; record the network's ` +
      `with 'plexus operator use ${keyFile} --admin ADMIN' (the admin key's .pub, its 43-character public key, or a member's keys/network.json)`,
  );
}

/**
 * The admin public key an `--admin` argument names: 43 base64url characters, a key or `.pub`
 * file, a `network.json` or `.network` record, or a data dir (its keys/network.json).
 */
export function adminKeyFromArg(arg: string): Buffer {
  if (B64U_KEY.test(arg)) return fromB64u(arg);
  let path = arg;
  try {
    if (statSync(arg).isDirectory()) {
      path = join(arg, 'keys', 'network.json');
      try {
        statSync(path);
      } catch {
        path = join(arg, 'network.json');
      }
    }
  } catch {
    throw new UsageError(
      `--admin ${arg}: neither a public key (43 base64url characters) nor a readable file`,
    );
  }
  const text = readTrusted(path, MAX_NETWORK_FILE_BYTES);
  if (text === undefined) throw new UsageError(`--admin ${arg}: ${path} does not exist`);
  if (B64U_KEY.test(text.trim())) return fromB64u(text.trim());
  let parsed: { adminPublicKey?: unknown; publicKey?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`--admin ${arg}: ${path} holds no plexus public key`);
  }
  const key = parsed?.adminPublicKey ?? parsed?.publicKey;
  if (typeof key !== 'string' || !B64U_KEY.test(key))
    throw new UsageError(`--admin ${arg}: ${path} holds no plexus public key`);
  return fromB64u(key);
}

/**
 * Records the network's admin key for an operator key (`KEY.network`, mode 0644), replacing
 * any earlier record atomically. Returns the record and the network id it replaced, if any.
 */
export function writeNetworkRecord(
  keyFile: string,
  adminPublicKey: Buffer,
): { path: string; networkId: string; replaced?: string } {
  const path = recordPathOf(keyFile);
  let replaced: string | undefined;
  try {
    const old = readTrusted(path, MAX_RECORD_BYTES);
    if (old !== undefined) replaced = parseNetworkText(old, path).networkId;
  } catch {
    replaced = 'an invalid record';
  }
  const record: NetworkRecord = {
    type: 'plexus-network',
    networkId: networkIdOf(adminPublicKey),
    adminPublicKey: b64u(adminPublicKey),
  };
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644, flag: 'wx' });
    // The CLI runs with umask 077; the record is public, like KEY.pub, so others may read it.
    chmodSync(tmp, 0o644);
    renameSync(tmp, path);
  } catch (err) {
    throw new NetworkRecordError(`cannot write ${path}: ${(err as Error).message}`);
  }
  return {
    path,
    networkId: record.networkId,
    replaced: replaced === record.networkId ? undefined : replaced,
  };
}

/** A record or a network.json: the admin key, checked against the network id beside it. */
function parseNetworkText(text: string, source: string): NetworkTrust {
  let parsed: { adminPublicKey?: unknown; networkId?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new NetworkRecordError(`${source} is not valid JSON; write it again with 'plexus operator use'`);
  }
  const key = parsed?.adminPublicKey;
  if (typeof key !== 'string' || !B64U_KEY.test(key))
    throw new NetworkRecordError(
      `${source} holds no admin public key; write it again with 'plexus operator use'`,
    );
  const adminPublicKey = fromB64u(key);
  const networkId = networkIdOf(adminPublicKey);
  if (parsed.networkId !== networkId)
    throw new NetworkRecordError(
      `${source}: its network id does not match its admin key (was it edited?); write it again with 'plexus operator use'`,
    );
  return { adminPublicKey, networkId, source };
}

/**
 * Reads a small file that decides whom the CLI trusts, or undefined if it does not exist. It
 * must belong to this user (or root) and be writable by nobody else, like ssh's known_hosts.
 */
function readTrusted(path: string, maxBytes: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NetworkRecordError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NetworkRecordError(`${path} is not a regular file`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid && st.uid !== 0)
      throw new NetworkRecordError(`${path} belongs to another user (uid ${st.uid}); refusing to trust it`);
    if (st.mode & 0o022)
      throw new NetworkRecordError(
        `${path} is writable by other users; refusing to trust it (chmod go-w ${path})`,
      );
    if (st.size > maxBytes)
      throw new NetworkRecordError(`${path} is ${st.size} bytes, over the ${maxBytes} a network file may be`);
    const buf = Buffer.alloc(maxBytes + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    if (n > maxBytes)
      throw new NetworkRecordError(`${path} is over the ${maxBytes} bytes a network file may be`);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
