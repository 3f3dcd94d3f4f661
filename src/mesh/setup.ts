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
import { generateSigner } from '../crypto/ed25519.ts';
import { openStore } from '../store/index.ts';
import { requestAdmission } from './admission.ts';
import { ADMIT_PROTOCOL, PROTOCOL_TIMEOUT_MS } from './constants.ts';
import { AdmissionError, BadListenError, NetworkSetupError } from './errors.ts';
import { generateNodeIdentity, type NetworkFile, writeNodeKeys } from './keys.ts';
import { Membership } from './membership.ts';
import { meshMigrations } from './migrations.ts';
import { createJoinNode } from './node.ts';
import { peerIdOf } from './peer-ids.ts';
import { countersign, signMember } from './records.ts';
import { decodeToken, networkIdOf } from './token.ts';

/** Options shared by init and join. */
export interface SetupOptions {
  paths: DataPaths;
  name: string;
  listen?: string[];
  api?: string;
  socks?: string;
  /** Relay reservations to hold (`join --behind-nat` sets 2). */
  reservations?: number;
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
  if (opts.api) config.api = { listen: opts.api };
  if (opts.socks) config.socks = { listen: opts.socks };
  // A node behind NAT holds reservations and serves no relay: nobody could dial it to use one.
  if (opts.reservations) config.mesh = { ...config.mesh, reservations: opts.reservations, relay: false };
  for (const addr of opts.listen ?? []) {
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
  const network: NetworkFile = {
    networkId,
    adminPublicKey: admin.signer.publicKey.toString('base64url'),
    bootstrap: [],
    createdAt: Date.now(),
  };
  writeNodeKeys(paths, { identity, psk: randomBytes(32), network, admin });
  writeConfig(paths.config, config);
  const db = openStore(paths.db, meshMigrations);
  try {
    const membership = new Membership(db, admin.signer.publicKey);
    const member = signMember(
      { peerId, name: opts.name, tags: opts.tags ?? [], tokenId: 'init', at: Date.now() },
      identity.signer,
    );
    membership.accept(countersign(member, 'admin', admin.signer));
  } finally {
    db.close();
  }
  return { name: opts.name, peerId, networkId, dataDir: paths.dataDir };
}

/**
 * Joins a network with a token: checks it offline, then asks a bootstrap node for admission
 * over a temporary libp2p node, and only then writes keys, config and membership.
 */
export async function joinNetwork(opts: SetupOptions & { token: string }): Promise<SetupResult> {
  const { paths } = opts;
  const token = decodeToken(opts.token);
  refuseExisting(paths);
  const tags = [...new Set([...token.tags, ...(opts.tags ?? [])])];
  const config = buildConfig(opts, tags);
  const identity = generateNodeIdentity();
  const peerId = peerIdOf(identity.publicKey);
  const member = signMember(
    { peerId, name: opts.name, tags, tokenId: token.id, at: Date.now() },
    identity.signer,
  );
  const adminPublicKey = Buffer.from(token.adm, 'base64url');

  const psk = Buffer.from(token.psk, 'hex');
  const swarmKeyFile = Buffer.from(`/key/swarm/psk/1.0.0/\n/base16/\n${token.psk}\n`);
  const node = await createJoinNode({
    nodeKey: identity.protobuf,
    swarmKeyFile,
    agentVersion: 'plexus-join',
  });
  await node.start();
  const failures: string[] = [];
  let result: Awaited<ReturnType<typeof requestAdmission>> | undefined;
  let admittedBy = '';
  try {
    for (const addr of token.bootstrap) {
      try {
        const ma = multiaddr(addr);
        const stream = await node.dialProtocol(ma, ADMIT_PROTOCOL, {
          signal: AbortSignal.timeout(PROTOCOL_TIMEOUT_MS),
        });
        admittedBy = addr;
        result = await requestAdmission(stream, opts.token, member);
        break;
      } catch (err) {
        // A refusal is final (the next node would say the same); a dial failure is not.
        if (err instanceof AdmissionError) throw err;
        failures.push(`${addr}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  } finally {
    await Promise.resolve(node.stop()).catch(() => {});
  }
  if (!result) {
    // A node that accepts TCP but fails the encrypted handshake (reset, or silence until the
    // timeout) is almost always one with another swarm key: say so rather than "unreachable".
    const tcpOk = await Promise.all(token.bootstrap.map((a) => tcpReachable(a)));
    const hint = tcpOk.some(Boolean)
      ? "a node accepted the connection but the encrypted handshake failed: the token's swarm key does not match that network"
      : 'check that a bootstrap node is running and reachable from here';
    throw new AdmissionError(
      'BOOTSTRAP_UNREACHABLE',
      `could not reach any bootstrap node: ${hint} (${failures.slice(0, 3).join('; ')})`,
      'unavailable',
    );
  }

  // Verify what we were given before writing anything: the admission must check out against
  // the snapshot (its admitter a member) and be ours. Then persist the same records.
  const check = new Membership(openStore(':memory:', meshMigrations), adminPublicKey);
  check.merge(result.snapshot);
  check.accept(result.admission);
  if (!check.isMember(peerId)) {
    throw new AdmissionError(
      'BAD_REPLY',
      'the admitting node returned an admission that does not verify',
      'internal',
    );
  }
  const admitter =
    result.admission.by === 'admin' ? 'admin' : (check.get(result.admission.by)?.name ?? admittedBy);
  const network: NetworkFile = {
    networkId: token.net,
    adminPublicKey: token.adm,
    bootstrap: token.bootstrap,
    createdAt: Date.now(),
  };
  writeNodeKeys(paths, { identity, psk, network });
  writeConfig(paths.config, config);
  const db = openStore(paths.db, meshMigrations);
  try {
    const membership = new Membership(db, adminPublicKey);
    membership.merge(result.snapshot);
    membership.accept(result.admission);
    for (const [peer, addrs] of Object.entries(result.addrs)) membership.touch(peer, { addrs });
    return {
      name: opts.name,
      peerId,
      networkId: token.net,
      dataDir: paths.dataDir,
      admittedBy: admitter,
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
