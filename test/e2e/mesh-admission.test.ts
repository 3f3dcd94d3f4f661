/**
 * Admission refuses every kind of bad input with a clear message, and the agent keeps running:
 * wrong swarm key, expired, tampered, revoked and used-up tokens, a duplicate name, garbage and
 * oversized frames on the admit protocol, a stranger that never gets admitted, a broken config.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import { readKeyFile } from '../../src/crypto/ed25519.ts';
import { ADMIT_PROTOCOL } from '../../src/mesh/constants.ts';
import { generateNodeIdentity } from '../../src/mesh/keys.ts';
import { createNode } from '../../src/mesh/node.ts';
import { decodeToken, encodeToken } from '../../src/mesh/token.ts';
import { type Cluster, makeNode, plexus, startCluster, waitFor } from '../helpers/cluster.ts';

describe('admission refuses bad input', () => {
  let cluster: Cluster;
  let n1Addr: string;
  before(async () => {
    cluster = await startCluster(1);
    const status = await cluster.nodes[0].json<{ addrs: string[] }>(['status']);
    n1Addr = status.addrs[0];
  });
  after(async () => cluster?.stop());

  const newToken = async (args: string[] = []) => {
    const r = await cluster.nodes[0].run(['token', 'create', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const craft = (token: string, change: (p: ReturnType<typeof decodeToken>) => void) => {
    const admin = readKeyFile(join(cluster.nodes[0].dataDir, 'keys', 'admin.key'));
    const p = decodeToken(token);
    change(p);
    return encodeToken(p, admin);
  };
  const join_ = async (token: string, name: string) => {
    const dir = join(cluster.root, `j-${name}-${Math.random().toString(36).slice(2, 8)}`);
    const r = await plexus([
      'join',
      token,
      '--name',
      name,
      '--data-dir',
      dir,
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--api',
      'off',
      '--socks',
      'off',
    ]);
    return { ...r, dir };
  };
  const stillRunning = async () => assert.equal((await cluster.nodes[0].run(['status'])).code, 0);

  it('an expired token is refused offline, before anything is written', async () => {
    const expired = craft(await newToken(), (p) => {
      p.exp = Math.floor(Date.now() / 1000) - 10;
    });
    const r = await join_(expired, 'late');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^plexus: token expired/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal(existsSync(r.dir), false);
  });

  it('a tampered or truncated token is refused offline', async () => {
    const token = await newToken();
    const [pre, payload, sig] = token.split('.');
    const p = JSON.parse(Buffer.from(payload, 'base64url').toString());
    p.uses = 100;
    for (const bad of [
      `${pre}.${Buffer.from(JSON.stringify(p)).toString('base64url')}.${sig}`,
      token.slice(0, -4),
    ]) {
      const r = await join_(bad, 'evil');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /does not verify/);
      assert.equal(existsSync(r.dir), false);
    }
  });

  it('a token with the wrong swarm key cannot even connect', async () => {
    const wrong = craft(await newToken(), (p) => {
      p.psk = 'ab'.repeat(32);
    });
    const r = await join_(wrong, 'wrongkey');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /swarm key does not match/);
    assert.equal(existsSync(r.dir), false);
    await stillRunning();
  });

  it('a revoked token is refused by the admitting node', async () => {
    const token = await newToken();
    const { id } = decodeToken(token);
    assert.equal((await cluster.nodes[0].run(['token', 'revoke', id])).code, 0);
    const r = await join_(token, 'revoked-tok');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /revoked/);
    assert.equal(existsSync(r.dir), false);
    const ls = await cluster.nodes[0].json<{ id: string; state: string }[]>(['token', 'ls']);
    assert.equal(ls.find((t) => t.id === id)?.state, 'revoked');
  });

  it('an id that reads as an option gets a hint, and works after --', async () => {
    const n1 = cluster.nodes[0];
    const bad = await n1.run(['token', 'revoke', '-abcdefgh1234']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /end the options with -- before it/);
    const r = await plexus(['token', 'revoke', '--data-dir', n1.dataDir, '--', '-abcdefgh1234']);
    // Revoking an id is signed and gossiped whether or not a node has seen the token yet.
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /-abcdefgh1234/);
  });

  it('a used-up token is refused, and token ls counts its uses', async () => {
    const token = await newToken(['--uses', '1']);
    const ok = await join_(token, 'first-use');
    assert.equal(ok.code, 0, ok.stderr);
    const r = await join_(token, 'second-use');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no uses left/);
    const ls = await cluster.nodes[0].json<{ id: string; used: number; state: string }[]>(['token', 'ls']);
    const t = ls.find((x) => x.id === decodeToken(token).id);
    assert.equal(t?.used, 1);
    assert.equal(t?.state, 'used');
  });

  it('a duplicate name is refused with what to do', async () => {
    const r = await join_(await newToken(), 'n1');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /name 'n1' is taken.*--name/);
    assert.equal(existsSync(r.dir), false);
  });

  it('garbage, oversized and forged admit frames get refused; the agent keeps running', async () => {
    const swarmKeyFile = readFileSync(join(cluster.nodes[0].dataDir, 'keys', 'swarm.key'));
    const stranger = await createNode({
      nodeKey: generateNodeIdentity().protobuf,
      swarmKeyFile,
      listen: [],
      announce: [],
      relayServer: false,
      reservations: 0,
      gater: { denyDialMultiaddr: async () => false },
      agentVersion: 'test-stranger',
    });
    await stranger.start();
    try {
      const ask = async (payload: Uint8Array) => {
        const stream = await stranger.dialProtocol(multiaddr(n1Addr), ADMIT_PROTOCOL);
        const lp = lpStream(stream, { maxDataLength: 1 << 20 });
        await lp.write(payload);
        try {
          return JSON.parse(
            Buffer.from((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray()).toString(),
          );
        } catch (err) {
          return { reset: (err as Error).name };
        }
      };
      const garbage = await ask(Buffer.from('\u0000\u0001not json at all'));
      assert.equal(garbage.ok, false);
      assert.equal(garbage.error.code, 'MALFORMED');
      const noToken = await ask(Buffer.from(JSON.stringify({ hello: 'world' })));
      assert.equal(noToken.error.code, 'BAD_REQUEST');
      // A valid token but a member record for some other peer: must not admit anyone.
      const token = await newToken();
      const other = generateNodeIdentity();
      const { signMember } = await import('../../src/mesh/records.ts');
      const { peerIdOf } = await import('../../src/mesh/peer-ids.ts');
      const member = signMember(
        {
          peerId: peerIdOf(other.publicKey),
          name: 'ghost',
          tags: [],
          tokenId: decodeToken(token).id,
          at: Date.now(),
        },
        other.signer,
      );
      const forged = await ask(Buffer.from(JSON.stringify({ token, member })));
      assert.equal(forged.error.code, 'PEER_MISMATCH');
      // 100 KiB frame: over the 64 KiB limit, the admitter resets or refuses.
      const big = await ask(Buffer.alloc(100 * 1024, 0x61));
      assert.ok(big.reset || big.error?.code === 'FRAME_TOO_LARGE', JSON.stringify(big));
      await stillRunning();
      const peers = await cluster.nodes[0].json<{ name: string }[]>(['peers']);
      assert.equal(
        peers.some((p) => p.name === 'ghost'),
        false,
      );
      assert.match(cluster.nodes[0].output(), /"msg":"refused admission"/);
      assert.match(cluster.nodes[0].output(), new RegExp(stranger.peerId.toString()));

      // Never admitted: expelled after the grace period, then refused for a while.
      const n1Peer = multiaddr(n1Addr)
        .getComponents()
        .find((c) => c.name === 'p2p')!.value!;
      await waitFor(
        () => stranger.getConnections().every((c) => c.remotePeer.toString() !== n1Peer),
        20_000,
        'expulsion',
      );
      // The TCP+pnet+Noise handshake may complete, but the gater then drops the connection
      // before any protocol can run on it.
      await assert.rejects(async () => {
        const s = await stranger.dialProtocol(multiaddr(n1Addr), ADMIT_PROTOCOL, {
          signal: AbortSignal.timeout(5000),
        });
        const lp = lpStream(s);
        await lp.write(Buffer.from('{}'));
        await lp.read({ signal: AbortSignal.timeout(5000) });
      });
      assert.match(cluster.nodes[0].output(), /expelling a peer that did not get admitted in time/);
    } finally {
      await stranger.stop();
    }
  });

  it('a malformed config file stops the agent with a one-line reason', async () => {
    const node = await makeNode(cluster.root, 'broken');
    const r = await plexus([
      'join',
      await newToken(),
      '--name',
      'broken',
      '--data-dir',
      node.dataDir,
      '--listen',
      `/ip4/127.0.0.1/tcp/${node.meshPort}`,
      '--api',
      'off',
      '--socks',
      'off',
    ]);
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(join(node.dataDir, 'config.yaml'), 'node:\n  name: broken\nmesh:\n  listen: 7070\n');
    const a = await plexus(['agent', '--data-dir', node.dataDir]);
    assert.equal(a.code, 1);
    assert.match(a.stderr, /^plexus: .*config\.yaml: mesh\.listen/);
    await stillRunning();
  });

  it('init refuses to overwrite an existing network', async () => {
    const r = await plexus(['init', '--name', 'again', '--data-dir', cluster.nodes[0].dataDir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already holds a plexus node/);
    await stillRunning();
  });
});
