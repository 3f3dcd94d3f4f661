/**
 * `plexus init` and `plexus join`: create a node's keys, config and first membership.
 * Both refuse to touch a data dir that already belongs to a network, and write the keys only
 * once everything else has succeeded (for join: once a member admitted us).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { type ConfigInput, type DataPaths, parseConfig, writeConfig } from '../config/index.ts';
import { b64u, generateSigner } from '../crypto/ed25519.ts';
import { openStore } from '../store/index.ts';
import { askDoor, type DoorGrant } from './admission.ts';
import { ADMIT_PROTOCOL, PROTOCOL_TIMEOUT_MS } from './constants.ts';
import { AdmissionError, BadListenError, NetworkSetupError } from './errors.ts';
import { generateNodeIdentity, type NetworkFile, writeNodeKeys } from './keys.ts';
import { Membership } from './membership.ts';
import { meshMigrations } from './migrations.ts';
import { createJoinNode } from './node.ts';
import { peerIdOf } from './peer-ids.ts';
import { signAdmission } from './records.ts';
import { decodeToken, networkIdOf, newTokenId, newTokenKey, openTokenCert, signTokenCert } from './token.ts';

/** Options shared by init and join. */
export interface SetupOptions {
  paths: DataPaths;
  name: string;
  listen?: string[];
  /** Join door listen multiaddrs, or `['off']` (default: `auto`, beside the mesh listeners). */
  door?: string[];
  api?: string;
  socks?: string;
  /** `join --behind-nat`: this node cannot be dialled, whatever dial-backs say. */
  behindNat?: boolean;
  tags?: string[];
}

/** What init and join report. */
export interface SetupResult {
  name: string;
  peerId: string;
  networkId: string;
  dataDir: string;
  admittedBy?: string;
  members?: number;
}

function buildConfig(opts: SetupOptions, tags: string[]): ConfigInput {
  const config: ConfigInput = { node: { name: opts.name, tags } };
  if (opts.listen?.length) config.mesh = { listen: opts.listen };
  if (opts.door?.length)
    config.mesh = { ...config.mesh, door: opts.door.includes('off') ? 'off' : opts.door };
  if (opts.api) config.api = { listen: opts.api };
  if (opts.socks) config.socks = { listen: opts.socks };
  // Said to be behind NAT: it holds reservations and serves no relay, nobody could dial it to use one.
  if (opts.behindNat) config.mesh = { ...config.mesh, reachability: 'behind-nat', relay: false };
  for (const addr of [...(opts.listen ?? []), ...(opts.door ?? []).filter((a) => a !== 'off')]) {
    try {
      multiaddr(addr);
    } catch {
      throw new BadListenError(addr);
    }
  }
  // Validate before anything is written: a bad flag must not leave half a node behind.
  parseConfig(config, 'flags');
  return config;
}

function refuseExisting(paths: DataPaths): void {
  if (existsSync(paths.network) || existsSync(paths.nodeKey) || existsSync(paths.config)) {
    throw new NetworkSetupError(
      'ALREADY_INITIALISED',
      `${paths.dataDir} already holds a plexus node; use another --data-dir, or remove it to start over`,
      'conflict',
    );
  }
}

/** Creates a new network with this node as its first member and admin. */
export function initNetwork(opts: SetupOptions): SetupResult {
  const { paths } = opts;
  refuseExisting(paths);
  const config = buildConfig(opts, opts.tags ?? []);
  const admin = generateSigner();
  const identity = generateNodeIdentity();
  const peerId = peerIdOf(identity.publicKey);
  const networkId = networkIdOf(admin.signer.publicKey);
  const now = Date.now();
  // The first node is admitted like every other: with a token, here a one-use one made for it,
  // so every member checks it the same way (records.ts). Its secret is used once and dropped.
  const tags = opts.tags ?? [];
  const tokenKey = newTokenKey();
  const cert = signTokenCert(
    {
      net: networkId,
      adm: b64u(admin.signer.publicKey),
      tk: b64u(tokenKey.key.publicKey),
      door: [],
      iat: Math.floor(now / 1000),
      exp: Math.floor(now / 1000) + 600,
      id: newTokenId(),
      uses: 1,
      tags,
    },
    admin.signer,
  );
  const admission = signAdmission(
    { peerId, name: opts.name, tags, tokenId: openTokenCert(cert, admin.signer.publicKey).id, at: now },
    identity.signer,
    { cert, key: tokenKey.key },
  );
  const network: NetworkFile = {
    networkId,
    adminPublicKey: admin.signer.publicKey.toString('base64url'),
    bootstrap: [],
    createdAt: now,
    swarmEpoch: 0,
  };
  writeNodeKeys(paths, { identity, psk: randomBytes(32), network, admin });
  writeConfig(paths.config, config);
  const db = openStore(paths.db, meshMigrations);
  try {
    const verdict = new Membership(db, admin.signer.publicKey).judge(admission, now);
    if (verdict.result === 'rejected') throw verdict.error;
  } finally {
    db.close();
  }
  return { name: opts.name, peerId, networkId, dataDir: paths.dataDir };
}

/**
 * Joins a network with a token: checks it offline, makes this node's self-certifying admission
 * (signed by its new node key and by the token key), hands it to a join door over Noise (no
 * swarm key yet), and only once a door admitted it writes keys, the swarm key the door returned,
 * config and membership.
 */
export async function joinNetwork(opts: SetupOptions & { token: string }): Promise<SetupResult> {
  const { paths } = opts;
  const token = decodeToken(opts.token);
  refuseExisting(paths);
  const { payload } = token;
  if (payload.door.length === 0)
    throw new AdmissionError('NO_DOOR', 'this token names no join door; create it on a running member');
  const tags = [...new Set([...payload.tags, ...(opts.tags ?? [])])];
  const config = buildConfig(opts, tags);
  const identity = generateNodeIdentity();
  const peerId = peerIdOf(identity.publicKey);
  const admission = signAdmission(
    { peerId, name: opts.name, tags, tokenId: payload.id, at: Date.now() },
    identity.signer,
    token,
  );
  const adminPublicKey = Buffer.from(payload.adm, 'base64url');

  const node = await createJoinNode({ nodeKey: identity.protobuf, agentVersion: 'plexus-join' });
  await node.start();
  const failures: string[] = [];
  let grant: DoorGrant | undefined;
  let door = '';
  try {
    for (const addr of payload.door) {
      try {
        const stream = await node.dialProtocol(multiaddr(addr), ADMIT_PROTOCOL, {
          signal: AbortSignal.timeout(PROTOCOL_TIMEOUT_MS),
        });
        door = addr;
        grant = await askDoor(stream, { type: 'join', admission });
        break;
      } catch (err) {
        // A refusal is final (the next door would say the same); a dial failure is not.
        if (err instanceof AdmissionError) throw err;
        failures.push(`${addr}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  } finally {
    await Promise.resolve(node.stop()).catch(() => {});
  }
  if (!grant) {
    const tcpOk = await Promise.all(payload.door.map((a) => tcpReachable(a)));
    const hint = tcpOk.some(Boolean)
      ? 'a door accepted the connection but the encrypted handshake failed: it is not the node the token names'
      : 'check that the node that made the token is running and its join door (mesh.door, port 7073) is reachable from here';
    throw new AdmissionError(
      'DOOR_UNREACHABLE',
      `could not reach any join door: ${hint} (${failures.slice(0, 3).join('; ')})`,
      'unavailable',
    );
  }

  // Check what the door gave before writing anything: our own admission must stand in the
  // snapshot it sent, judged as every member judges it. Then persist the same records.
  const check = new Membership(openStore(':memory:', meshMigrations), adminPublicKey);
  check.merge(grant.snapshot);
  check.accept(admission);
  if (!check.isMember(peerId)) {
    throw new AdmissionError(
      'BAD_REPLY',
      'the join door answered with a membership that does not admit us',
      'internal',
    );
  }
  const network: NetworkFile = {
    networkId: payload.net,
    adminPublicKey: payload.adm,
    // Where this node looks for the mesh when it knows no member's address: every member's
    // last known addresses come with the snapshot, so this is only the last resort.
    bootstrap: Object.entries(grant.addrs)
      .flatMap(([peer, addrs]) => addrs.map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${peer}`)))
      .filter((a) => !a.includes('/p2p-circuit'))
      .slice(0, 32),
    createdAt: Date.now(),
    swarmEpoch: grant.swarmKey.epoch,
    // Where to ask for the swarm key if this node misses a rotation before it learns any other.
    doors: payload.door.slice(0, 32),
  };
  writeNodeKeys(paths, { identity, psk: Buffer.from(grant.swarmKey.psk, 'hex'), network });
  writeConfig(paths.config, config);
  const db = openStore(paths.db, meshMigrations);
  try {
    const membership = new Membership(db, adminPublicKey);
    membership.merge(grant.snapshot);
    membership.accept(admission);
    for (const [peer, addrs] of Object.entries(grant.addrs)) membership.touch(peer, { addrs });
    return {
      name: opts.name,
      peerId,
      networkId: payload.net,
      dataDir: paths.dataDir,
      admittedBy: check.get(door.split('/p2p/')[1] ?? '')?.name ?? door,
      members: membership.list().length,
    };
  } finally {
    db.close();
  }
}

/** True if a plain TCP connection to a multiaddr's host and port succeeds within a second. */
function tcpReachable(addr: string): Promise<boolean> {
  let host: string;
  let port: number;
  try {
    const parts = multiaddr(addr).getComponents();
    const ip = parts.find(
      (c) => c.name === 'ip4' || c.name === 'ip6' || c.name === 'dns4' || c.name === 'dns6',
    );
    const tcp = parts.find((c) => c.name === 'tcp');
    if (!ip?.value || !tcp?.value) return Promise.resolve(false);
    host = ip.value;
    port = Number(tcp.value);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/** True if a string is a valid peer ID (for CLI input checks). */
export function isPeerId(text: string): boolean {
  try {
    peerIdFromString(text);
    return true;
  } catch {
    return false;
  }
}
