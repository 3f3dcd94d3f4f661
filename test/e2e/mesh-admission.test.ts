/**
 * Admission refuses every kind of bad input with a clear message, and the agent keeps running:
 * a token naming the wrong door, expired, tampered, revoked and used-up tokens, a duplicate
 * name, garbage, forged and oversized frames at the join door, a broken config.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import { b64u, readKeyFile } from '../../src/crypto/ed25519.ts';
import { ADMIT_PROTOCOL } from '../../src/mesh/constants.ts';
import { generateNodeIdentity } from '../../src/mesh/keys.ts';
import { createJoinNode } from '../../src/mesh/node.ts';
import { peerIdOf } from '../../src/mesh/peer-ids.ts';
import { signAdmission } from '../../src/mesh/records.ts';
import { decodeToken, encodeToken, newTokenKey, type TokenPayload } from '../../src/mesh/token.ts';
import { type Cluster, joinWith, makeNode, plexus, startCluster } from '../helpers/cluster.ts';

describe('admission refuses bad input', () => {
  let cluster: Cluster;
  let door: string;
  before(async () => {
    cluster = await startCluster(1);
    const status = await cluster.nodes[0].json<{ door: string[] }>(['status']);
    door = status.door[0];
  });
  after(async () => cluster?.stop());

  const newToken = async (args: string[] = []) => {
    const r = await cluster.nodes[0].run(['token', 'create', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  /** A token with changed contents, properly signed by the admin (as if the admin made it so). */
  const craft = (token: string, change: (p: TokenPayload) => void) => {
    const admin = readKeyFile(join(cluster.nodes[0].dataDir, 'keys', 'admin.key'));
    const p = { ...decodeToken(token).payload };
    change(p);
    const { seed, key } = newTokenKey();
    return encodeToken({ ...p, tk: b64u(key.publicKey) }, admin, seed);
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
    const [pre, payload, sig, secret] = token.split('.');
    const p = JSON.parse(Buffer.from(payload, 'base64url').toString());
    p.uses = 100;
    for (const [bad, why] of [
      [`${pre}.${Buffer.from(JSON.stringify(p)).toString('base64url')}.${sig}.${secret}`, /not signed by/],
      [token.slice(0, -4), /secret part is corrupt|altered/],
    ] as const) {
      const r = await join_(bad, 'evil');
      assert.equal(r.code, 1);
      assert.match(r.stderr, why);
      assert.equal(existsSync(r.dir), false);
    }
  });

  it('a token naming a door that is not the network’s node fails the Noise handshake, with a hint', async () => {
    const other = peerIdOf(generateNodeIdentity().publicKey);
    const wrong = craft(await newToken(), (p) => {
      p.door = [door.replace(/\/p2p\/.*$/, `/p2p/${other}`)];
    });
    const r = await join_(wrong, 'wrongdoor');
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /could not reach any join door: a door accepted the connection but the encrypted handshake failed/,
    );
    assert.equal(existsSync(r.dir), false);
    await stillRunning();
  });

  it('a revoked token is refused by the door', async () => {
    const token = await newToken();
    const { id } = decodeToken(token).payload;
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
    const t = ls.find((x) => x.id === decodeToken(token).payload.id);
    assert.equal(t?.used, 1);
    assert.equal(t?.state, 'used');
  });

  it('a duplicate name is refused with what to do', async () => {
    const r = await join_(await newToken(), 'n1');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /name 'n1' is taken.*--name/);
    assert.equal(existsSync(r.dir), false);
  });

  it('garbage, oversized and forged frames at the door get refused; the agent keeps running', async () => {
    const stranger = await createJoinNode({
      nodeKey: generateNodeIdentity().protobuf,
      agentVersion: 'test-stranger',
    });
    await stranger.start();
    try {
      const ask = async (payload: Uint8Array) => {
        const stream = await stranger.dialProtocol(multiaddr(door), ADMIT_PROTOCOL);
        const lp = lpStream(stream, { maxDataLength: 1 << 20 });
        await lp.write(payload);
        try {
          return JSON.parse(
            Buffer.from((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray()).toString(),
          );
        } catch (err) {
          return { reset: (err as Error).name };
        } finally {
          stream.abort(new Error('done'));
        }
      };
      const garbage = await ask(Buffer.from('\u0000\u0001not json at all'));
      assert.equal(garbage.ok, false);
      assert.equal(garbage.error.code, 'MALFORMED');
      const noToken = await ask(Buffer.from(JSON.stringify({ hello: 'world' })));
      assert.equal(noToken.error.code, 'BAD_REQUEST');
      // A non-member asking for the swarm key gets nothing.
      const rekey = await ask(Buffer.from(JSON.stringify({ type: 'rekey' })));
      assert.equal(rekey.error.code, 'NOT_A_MEMBER');
      assert.equal('swarmKey' in rekey, false);
      // A valid token, but a record of some other peer: must not admit anyone.
      const token = decodeToken(await newToken());
      const other = generateNodeIdentity();
      const admission = signAdmission(
        {
          peerId: peerIdOf(other.publicKey),
          name: 'ghost',
          tags: [],
          tokenId: token.payload.id,
          at: Date.now(),
        },
        other.signer,
        token,
      );
      const forged = await ask(Buffer.from(JSON.stringify({ type: 'join', admission })));
      assert.equal(forged.error.code, 'PEER_MISMATCH');
      // 100 KiB frame: over the 64 KiB limit, the door resets or refuses.
      const big = await ask(Buffer.alloc(100 * 1024, 0x61));
      assert.ok(big.reset || big.error?.code === 'FRAME_TOO_LARGE', JSON.stringify(big));
      await stillRunning();
      const peers = await cluster.nodes[0].json<{ name: string }[]>(['peers']);
      assert.equal(
        peers.some((p) => p.name === 'ghost'),
        false,
      );
      assert.match(cluster.nodes[0].output(), /"msg":"refused at the join door"/);
      assert.match(cluster.nodes[0].output(), new RegExp(stranger.peerId.toString()));
    } finally {
      await stranger.stop();
    }
  });

  it('a malformed config file stops the agent with a one-line reason', async () => {
    const node = await makeNode(cluster.root, 'broken');
    const r = await joinWith(node, await newToken());
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
