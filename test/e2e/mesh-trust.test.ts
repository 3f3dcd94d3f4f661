/**
 * Issue 12, tried as an attacker would, against real agents:
 * - a compromised member (its node key and the swarm key) pushes admissions it minted without a
 *   token, one backdated with its own used-up join token, and, after it was revoked, one through
 *   an accomplice member: every node refuses each, and the real holder of the name stays;
 * - one `uses: 1` token redeemed at two different doors at once: exactly one member results, and
 *   every node agrees on which;
 * - a stranger holding the swarm key (as every old token carried it) or a revoked node's keys
 *   gets no protocol on the mesh port, and nothing but admission refusals at the door.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { b64u, generateSigner, readKeyFile } from '../../src/crypto/ed25519.ts';
import {
  ADMIT_PROTOCOL,
  MEMBERS_DIGEST_PROTOCOL,
  MEMBERS_PROTOCOL,
  MEMBERS_TOPIC,
  SETTLE_MS,
} from '../../src/mesh/constants.ts';
import { jsonChannel } from '../../src/mesh/json-stream.ts';
import { generateNodeIdentity, parseNodeKey, parseSwarmKey } from '../../src/mesh/keys.ts';
import { createJoinNode, createNode, type PlexusLibp2p } from '../../src/mesh/node.ts';
import { peerIdOf } from '../../src/mesh/peer-ids.ts';
import { signAdmission, signMember } from '../../src/mesh/records.ts';
import { SwarmKeySwitch } from '../../src/mesh/swarm-key.ts';
import { decodeToken, encodeToken, newTokenKey, signTokenCert } from '../../src/mesh/token.ts';
import {
  type Cluster,
  joinWith,
  makeNode,
  plexus,
  startCluster,
  type TestNode,
  waitFor,
} from '../helpers/cluster.ts';

/** A libp2p node with the given identity and swarm key, as an attacker holding them runs one. */
async function attackerNode(nodeKey: Uint8Array, swarmKeyFile: string): Promise<PlexusLibp2p> {
  const node = await createNode({
    nodeKey,
    protector: new SwarmKeySwitch(parseSwarmKey(readFileSync(swarmKeyFile, 'utf8')), 0).protector(),
    listen: [],
    announce: [],
    relayServer: false,
    reservations: 0,
    gater: { denyDialMultiaddr: async () => false },
    agentVersion: 'attacker',
  });
  await node.start();
  return node;
}

const keysOf = (n: TestNode) => ({
  nodeKey: readFileSync(join(n.dataDir, 'keys', 'node.key')),
  swarmKey: join(n.dataDir, 'keys', 'swarm.key'),
});
const meshAddr = async (n: TestNode) => (await n.json<{ addrs: string[] }>(['status'])).addrs[0];
const doorAddr = async (n: TestNode) => (await n.json<{ door: string[] }>(['status'])).door[0];
const peerIdOfNode = async (n: TestNode) => (await n.json<{ peerId: string }>(['status'])).peerId;

/** Pushes admissions to `target` the two ways a member can: a sync snapshot, and gossip. */
async function push(attacker: PlexusLibp2p, target: string, admissions: unknown[]): Promise<void> {
  const stream = await attacker.dialProtocol(multiaddr(target), MEMBERS_PROTOCOL, {
    signal: AbortSignal.timeout(5000),
  });
  const ch = jsonChannel(stream, 16 << 20);
  await ch.write({ members: admissions, revocations: [] });
  await ch.read(AbortSignal.timeout(5000)).catch(() => undefined);
  const ps = attacker.services.pubsub;
  ps.subscribe(MEMBERS_TOPIC);
  await waitFor(() => ps.getSubscribers(MEMBERS_TOPIC).length > 0, 8000, 'gossip subscribers', 50).catch(
    () => {},
  );
  for (const admission of admissions) {
    await ps
      .publish(MEMBERS_TOPIC, Buffer.from(JSON.stringify({ type: 'admission', admission })))
      .catch(() => {});
  }
}

describe('a compromised member cannot add members or take names', () => {
  let cluster: Cluster;
  let evilToken: string;
  let evil: TestNode;
  let web2: TestNode;
  let web2Peer: string;
  before(async () => {
    cluster = await startCluster(2);
    web2 = await cluster.add('web-2');
    const tok = await cluster.nodes[0].run(['token', 'create', '--ttl', '1h']);
    evilToken = tok.stdout.trim();
    evil = await makeNode(cluster.root, 'evil');
    const r = await joinWith(evil, evilToken);
    assert.equal(r.code, 0, r.stderr);
    await evil.start();
    cluster.nodes.push(evil);
    await cluster.waitConverged();
    web2Peer = await peerIdOfNode(web2);
    // The names are settled: a claim from now on can only be refused, never preferred.
    await new Promise((r) => setTimeout(r, SETTLE_MS + 500));
  });
  after(async () => cluster?.stop());

  const holderEverywhere = async (name: string) =>
    Promise.all(
      cluster.nodes
        .filter((n) => n !== evil && n.proc?.exitCode === null)
        .map(async (n) => {
          if (n === web2) return web2Peer;
          const peers = await n.json<{ name: string; peerId: string }[]>(['peers']);
          return peers.find((p) => p.name === name)?.peerId;
        }),
    );

  it('admissions minted without a token, or backdated with a used token, are refused by every node', async () => {
    const { nodeKey, swarmKey } = keysOf(evil);
    const evilId = parseNodeKey(nodeKey);
    const attacker = await attackerNode(nodeKey, swarmKey);
    try {
      const victim = generateNodeIdentity();
      const victimPeer = peerIdOf(victim.publicKey);
      const record = { peerId: victimPeer, name: 'web-2', tags: [], tokenId: 'madeup12345', at: 1 };
      // 1. The attack that worked before: a record countersigned by a member, a made-up token, at=1.
      const countersigned = {
        member: signMember(record, victim.signer),
        by: peerIdOf(evilId.publicKey),
        bs: b64u(evilId.signer.sign(Buffer.from('plexus-admit/1\n'))),
      };
      // 2. The new form, with a token certificate that evil signed itself.
      const { key } = newTokenKey();
      const real = decodeToken(evilToken);
      const selfCert = signTokenCert({ ...real.payload, tk: b64u(key.publicKey), uses: 100 }, evilId.signer);
      const selfSigned = signAdmission(
        { ...record, tokenId: real.payload.id, at: Date.now() },
        victim.signer,
        {
          cert: selfCert,
          key,
        },
      );
      // 3. Evil's own, used-up join token, with the record dated at the token's start.
      const backdated = signAdmission(
        { ...record, tokenId: real.payload.id, at: real.payload.iat * 1000 },
        victim.signer,
        real,
      );
      const forged = [countersigned, selfSigned, backdated];
      for (const n of cluster.nodes.filter((x) => x !== evil))
        await push(attacker, await meshAddr(n), forged);
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(await holderEverywhere('web-2'), [web2Peer, web2Peer, web2Peer]);
      for (const n of cluster.nodes.filter((x) => x !== evil)) {
        const peers = await n.json<{ peerId: string }[]>(['peers']);
        assert.equal(
          peers.some((p) => p.peerId === victimPeer),
          false,
          `${n.name} took the forged member`,
        );
      }
      // The backdated one was a real token's: refused and reported (audit-worthy), with a warning.
      const r = await cluster.nodes[0].run(['peers']);
      assert.match(r.stderr, /warning: .*(TOKEN_USED_UP|NAME_TAKEN)/);
      const audit = await cluster.nodes[0].json<{ action: string; verdict: string; code: string }[]>([
        'audit',
      ]);
      assert.ok(
        audit.some(
          (a) =>
            a.action === 'mesh.admission' &&
            a.verdict === 'refused' &&
            /TOKEN_USED_UP|NAME_TAKEN/.test(a.code),
        ),
        'the refused claim is in the audit log',
      );
    } finally {
      await attacker.stop();
    }
  });

  it('after evil is revoked, its keys reach nothing, and an accomplice cannot slip its admissions in', async () => {
    const evilPeer = await peerIdOfNode(evil);
    assert.equal((await cluster.nodes[0].run(['revoke', 'evil'])).code, 0);
    await waitFor(
      async () => {
        const peers = await cluster.nodes[1].json<{ peerId: string }[]>(['peers']);
        return !peers.some((p) => p.peerId === evilPeer);
      },
      10_000,
      'the revocation to spread',
    );
    await evil.stop();
    const { nodeKey, swarmKey } = keysOf(evil);
    const attacker = await attackerNode(nodeKey, swarmKey);
    try {
      await assert.rejects(push(attacker, await meshAddr(cluster.nodes[0]), []));
    } finally {
      await attacker.stop();
    }
    // An accomplice (n2's keys) delivers what evil signed after its revocation with its token.
    const accomplice = await attackerNode(
      keysOf(cluster.nodes[1]).nodeKey,
      keysOf(cluster.nodes[1]).swarmKey,
    );
    try {
      const victim = generateNodeIdentity();
      const real = decodeToken(evilToken);
      const adm = signAdmission(
        {
          peerId: peerIdOf(victim.publicKey),
          name: 'web-2',
          tags: [],
          tokenId: real.payload.id,
          at: Date.now(),
        },
        victim.signer,
        real,
      );
      await push(accomplice, await meshAddr(cluster.nodes[0]), [adm]);
      await new Promise((r) => setTimeout(r, 1000));
      const peers = await cluster.nodes[0].json<{ name: string; peerId: string }[]>(['peers']);
      assert.equal(peers.find((p) => p.name === 'web-2')?.peerId, web2Peer);
      assert.equal(
        peers.some((p) => p.peerId === peerIdOf(victim.publicKey)),
        false,
      );
    } finally {
      await accomplice.stop();
    }
  });
});

describe('a one-use token redeemed at two doors at once', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(3);
  });
  after(async () => cluster?.stop());

  it('makes exactly one member, and every node agrees on which', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const text = (await n1.run(['token', 'create', '--uses', '1'])).stdout.trim();
    // The same token (same id, key and limit), signed by the admin twice, each naming one door.
    const admin = readKeyFile(join(n1.dataDir, 'keys', 'admin.key'));
    const t = decodeToken(text);
    const seed = Buffer.from(text.split('.')[3], 'base64url');
    const via = async (n: TestNode) => encodeToken({ ...t.payload, door: [await doorAddr(n)] }, admin, seed);
    const [a, b] = [await via(n2), await via(n3)];
    const joinAs = (token: string, name: string) =>
      plexus([
        'join',
        token,
        '--name',
        name,
        '--data-dir',
        join(cluster.root, name),
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        '--api',
        'off',
        '--socks',
        'off',
      ]);
    const [ra, rb] = await Promise.all([joinAs(a, 'racer-a'), joinAs(b, 'racer-b')]);
    const ok = [ra, rb].filter((r) => r.code === 0);
    assert.equal(ok.length, 1, `one join succeeds: ${ra.stderr} | ${rb.stderr}`);
    const loser = ra.code === 0 ? rb : ra;
    assert.match(loser.stderr, /TOKEN|no uses left|lost/);
    const winner = ra.code === 0 ? 'racer-a' : 'racer-b';
    await waitFor(
      async () => {
        const views = await Promise.all(
          [n1, n2, n3].map(async (n) =>
            (await n.json<{ name: string }[]>(['peers']))
              .map((p) => p.name)
              .filter((x) => x.startsWith('racer')),
          ),
        );
        return views.every((v) => v.length === 1 && v[0] === winner);
      },
      10_000,
      'every node to hold the same single racer',
    );
    const uses = await n1.json<{ id: string; used: number }[]>(['token', 'ls']);
    assert.equal(uses.find((x) => x.id === t.payload.id)?.used, 1);
  });
});

describe('strangers get nothing but admission refusals', () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(3);
  });
  after(async () => cluster?.stop());

  /** Tries every protocol a stranger used to get answers from; returns what answered. */
  async function probe(node: PlexusLibp2p, target: string): Promise<string[]> {
    const answered: string[] = [];
    const protocols = [
      '/ipfs/id/1.0.0',
      '/ipfs/ping/1.0.0',
      '/plexus/kad/1.0.0',
      '/meshsub/1.2.0',
      MEMBERS_PROTOCOL,
      MEMBERS_DIGEST_PROTOCOL,
      ADMIT_PROTOCOL,
      '/plexus/cmd/1.0.0',
      '/plexus/tcp/1.0.0',
    ];
    for (const proto of protocols) {
      try {
        const s = await node.dialProtocol(multiaddr(target), proto, { signal: AbortSignal.timeout(3000) });
        answered.push(proto);
        s.abort(new Error('probe done'));
      } catch {
        // refused: what we want
      }
    }
    return answered;
  }

  const learnt = async (node: PlexusLibp2p, members: string[]) => {
    const known: PeerId[] = (await node.peerStore.all()).map((p) => p.id);
    return members.filter((m) => known.some((k) => k.equals(peerIdFromString(m))));
  };

  it('with the swarm key and a fresh identity: no protocol on the mesh port, no addresses, no telemetry', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const stranger = await attackerNode(generateNodeIdentity().protobuf, keysOf(n1).swarmKey);
    const telemetry: unknown[] = [];
    stranger.services.pubsub.subscribe('plexus/telemetry/1');
    stranger.services.pubsub.addEventListener('message', (e) => telemetry.push(e.detail));
    try {
      assert.deepEqual(await probe(stranger, await meshAddr(n1)), []);
      await new Promise((r) => setTimeout(r, 1500));
      const others = await Promise.all([n2, n3].map(peerIdOfNode));
      assert.deepEqual(await learnt(stranger, others), [], 'it learnt no other member');
      assert.deepEqual(telemetry, []);
    } finally {
      await stranger.stop();
    }
  });

  it('with a revoked node’s keys: nothing on the mesh port; at the door, only refusals', async () => {
    const [n1, , n3] = cluster.nodes;
    const { nodeKey, swarmKey } = keysOf(n3);
    assert.equal((await n1.run(['revoke', 'n3'])).code, 0);
    await n3.stop();
    const revoked = await attackerNode(nodeKey, swarmKey);
    try {
      assert.deepEqual(await probe(revoked, await meshAddr(n1)), []);
    } finally {
      await revoked.stop();
    }
    const atDoor = await createJoinNode({ nodeKey, agentVersion: 'revoked' });
    await atDoor.start();
    try {
      const door = await doorAddr(n1);
      const stream = await atDoor.dialProtocol(multiaddr(door), ADMIT_PROTOCOL);
      const ch = jsonChannel(stream, 1 << 20);
      await ch.write({ type: 'rekey' });
      const reply = (await ch.read(AbortSignal.timeout(5000))) as { ok: boolean; error?: { code: string } };
      assert.equal(reply.ok, false);
      assert.equal(reply.error?.code, 'NOT_A_MEMBER');
      // The door runs nothing else: no identify, no ping, no DHT.
      for (const proto of ['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0', '/plexus/kad/1.0.0', MEMBERS_PROTOCOL]) {
        await assert.rejects(
          atDoor.dialProtocol(multiaddr(door), proto, { signal: AbortSignal.timeout(3000) }),
        );
      }
    } finally {
      await atDoor.stop();
    }
  });

  it('a forged admin key gets no admission at the door', async () => {
    const [n1] = cluster.nodes;
    const stranger = generateNodeIdentity();
    const fake = generateSigner().signer;
    const real = decodeToken((await n1.run(['token', 'create'])).stdout.trim());
    // The real network's token, with a token key of the attacker's, certified by a key it made up.
    const { key } = newTokenKey();
    const cert = signTokenCert({ ...real.payload, tk: b64u(key.publicKey) }, fake);
    const adm = signAdmission(
      {
        peerId: peerIdOf(stranger.publicKey),
        name: 'intruder',
        tags: [],
        tokenId: real.payload.id,
        at: Date.now(),
      },
      stranger.signer,
      { cert, key },
    );
    const node = await createJoinNode({ nodeKey: stranger.protobuf, agentVersion: 'intruder' });
    await node.start();
    try {
      const stream = await node.dialProtocol(multiaddr(await doorAddr(n1)), ADMIT_PROTOCOL);
      const ch = jsonChannel(stream, 1 << 20);
      await ch.write({ type: 'join', admission: adm });
      const reply = (await ch.read(AbortSignal.timeout(8000))) as { ok: boolean; error?: { code: string } };
      assert.equal(reply.ok, false);
      assert.match(reply.error?.code ?? '', /TOKEN_TAMPERED|WRONG_NETWORK/);
    } finally {
      await node.stop();
    }
  });
});
