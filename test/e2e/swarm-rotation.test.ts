// test-lane: side (mostly waits on rotation leads and rekey timers; see scripts/test)
/**
 * Swarm-key rotation in a 5-node mesh (issue 12): a forward keeps carrying a transfer intact
 * while `plexus rotate-swarm-key` moves every node to a new key; a node that was off during the
 * rotation gets the key from a join door when it is back; after `revoke --rotate` the revoked
 * node, restarted with its old keys, stays cut off, and so does anyone holding an old key. It
 * prints the forward's interruption during rotations (the largest gap between echoes of a
 * request loop through it), median and spread over ROTATIONS rotations.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair, privateKeyFromProtobuf } from '@libp2p/crypto/keys';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { type Cluster, startCluster, type TestNode, waitFor } from '../helpers/cluster.ts';
import { dialLoopback } from '../helpers/sockets.ts';

/**
 * Rotations measured after the first (which carries the transfer), each beside a baseline window.
 * The suite runs 1 to stay within its time (the first test already crosses a rotation with a
 * transfer); for the figure, run the file with ROTATIONS=5 or more.
 */
const ROTATIONS = Number(process.env.ROTATIONS ?? 1);
/** A rotation window: the CLI returns ~10 s after the rotation (its lead), plus 3 s after it. */
const ROTATION_WINDOW_MS = 13_000;
const TRANSFER_BYTES = 128 * 1024 * 1024;
/** The transfer is paced to outlast the rotation's 10 s lead, so it crosses the switch. */
const TRANSFER_BYTES_PER_S = 8 * 1024 * 1024;

interface SwarmStatus {
  epoch: number;
  pending: { epoch: number; switchAt: number } | null;
  members: { name: string; epoch: number | null }[];
}
const swarmOf = (n: TestNode) => n.json<SwarmStatus>(['rotate-swarm-key', '--status']);
const keyFileOf = (n: TestNode) => readFileSync(join(n.dataDir, 'keys', 'swarm.key'), 'utf8');
const nodeKeyOf = (n: TestNode) => readFileSync(join(n.dataDir, 'keys', 'node.key'));
const pskOf = (text: string) => Buffer.from(text);

function echoServer(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    );
  });
}

/** One small request through the forward: 'ping' out, 'ping' back, within 5 s. */
async function echoOnce(port: number): Promise<void> {
  const s = await dialLoopback(port);
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('echo timed out')), 5000);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => {
      clearTimeout(t);
      resolve();
    });
    s.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    s.end('ping');
  }).finally(() => s.destroy());
  if (Buffer.concat(chunks).toString() !== 'ping') throw new Error('echo came back wrong');
}

/** Echoes through the forward until `stop()`; bounded to 20 000 requests. */
function echoLoop(port: number) {
  const ok: number[] = [];
  let failures = 0;
  let stopped = false;
  const start = Date.now();
  const done = (async () => {
    for (let i = 0; i < 20_000 && !stopped; i++) {
      try {
        await echoOnce(port);
        ok.push(Date.now());
      } catch {
        failures++;
        await sleep(10);
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
      const end = Date.now();
      let maxGap = 0;
      let gapFrom = start;
      let prev = start;
      for (const t of [...ok, end]) {
        if (t - prev > maxGap) [maxGap, gapFrom] = [t - prev, prev];
        prev = t;
      }
      return { maxGap, gapFrom, echoes: ok.length, failures };
    },
  };
}

/** Sends `total` bytes at a paced rate through the forward and reads the echo; both sha256. */
async function pacedTransfer(
  port: number,
  total: number,
): Promise<{ sent: string; got: string; bytes: number }> {
  const s = await dialLoopback(port);
  const sent = createHash('sha256');
  const got = createHash('sha256');
  let bytes = 0;
  const received = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      got.update(d);
      bytes += d.length;
    });
    s.once('end', resolve);
    s.once('error', reject);
  });
  const block = randomBytes(256 * 1024);
  const started = Date.now();
  for (let off = 0, i = 0; off < total; off += block.length, i++) {
    const b = Buffer.from(block.subarray(0, Math.min(block.length, total - off)));
    b.writeUInt32BE(i, 0);
    sent.update(b);
    if (!s.write(b)) await once(s, 'drain');
    const ahead = started + ((off + b.length) / TRANSFER_BYTES_PER_S) * 1000 - Date.now();
    if (ahead > 0) await sleep(ahead);
  }
  s.end();
  await received;
  s.destroy();
  return { sent: sent.digest('hex'), got: got.digest('hex'), bytes };
}

/** Dials a node's mesh port as `identity` with `swarmKey`; true if a connection opened. */
async function canConnect(target: TestNode, swarmKeyText: string, identity?: Buffer): Promise<boolean> {
  const privateKey = identity ? privateKeyFromProtobuf(identity) : await generateKeyPair('Ed25519');
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: [] },
    transports: [tcp()],
    connectionProtector: preSharedKey({ psk: pskOf(swarmKeyText) }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: async () => false },
  });
  try {
    const status = await target.json<{ peerId: string }>(['status']);
    const conn = await node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${target.meshPort}/p2p/${status.peerId}`), {
      signal: AbortSignal.timeout(5000),
    });
    // The gater may still close it right after the upgrade: give it a moment.
    await sleep(500);
    return conn.status === 'open';
  } catch {
    return false;
  } finally {
    await node.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe('swarm-key rotation in a 5-node mesh', { timeout: 15 * 60_000 }, () => {
  let cluster: Cluster;
  let echo: Server;
  let forwardPort = 0;
  const epoch0Key = { text: '' };
  const gaps: number[] = [];

  before(async () => {
    cluster = await startCluster(5);
    const { server, port } = await echoServer();
    echo = server;
    const [, n2, , , n5] = cluster.nodes;
    assert.equal((await n5.run(['expose', 'echo', String(port)])).code, 0);
    const f = await n2.json<{ listen: string }>(['forward', 'add', 'echo.n5']);
    forwardPort = Number(f.listen.split(':').at(-1));
    await waitFor(async () => await echoOnce(forwardPort).then(() => true), 20_000, 'the forward to work');
    epoch0Key.text = keyFileOf(cluster.nodes[0]);
  });

  after(async () => {
    echo?.close();
    await cluster?.stop();
  });

  test('a transfer through a forward stays intact while the mesh rotates; a node that was off rekeys at a door', async () => {
    const [n1, , , n4] = cluster.nodes;
    await n4.stop();
    const loop = echoLoop(forwardPort);
    const transfer = pacedTransfer(forwardPort, TRANSFER_BYTES);
    const r = await n1.run(['rotate-swarm-key', '--json'], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr);
    const rotated = JSON.parse(r.stdout) as {
      epoch: number;
      switchAt: number;
      switched: boolean;
      behind: { name: string }[];
    };
    assert.equal(rotated.epoch, 1);
    assert.equal(rotated.switched, true);
    assert.deepEqual(
      rotated.behind.map((m) => m.name),
      ['n4'],
      'every running member holds the new key; only the stopped one is behind',
    );
    const t = await transfer;
    assert.equal(t.bytes, TRANSFER_BYTES);
    assert.equal(t.got, t.sent, 'the echoed bytes are the bytes sent');
    const g = await loop.stop();
    gaps.push(g.maxGap);
    console.log(
      `# rotation to epoch 1 with the transfer: forward max gap ${g.maxGap} ms (from ${g.gapFrom - rotated.switchAt} ms after switchAt), ${g.echoes} echoes, ${g.failures} failed`,
    );
    for (const n of cluster.nodes.filter((x) => x !== n4)) {
      assert.equal((await swarmOf(n)).epoch, 1, `${n.name} uses epoch 1`);
      assert.notEqual(keyFileOf(n), epoch0Key.text, `${n.name} wrote the new key to disk`);
    }
    assert.equal(keyFileOf(n1), keyFileOf(cluster.nodes[4]), 'every node has the same new key');

    // n4 comes back with epoch 0: it can reach nobody until a join door hands it epoch 1.
    await n4.start();
    await waitFor(async () => (await swarmOf(n4)).epoch === 1, 90_000, 'n4 to rekey at a join door', 1000);
    await cluster.waitConverged(60_000);
    assert.match(n4.output(), /got the current swarm key from a join door/);
  });

  test('the forward through repeated rotations: interruption per rotation, against no rotation', async () => {
    const n1 = cluster.nodes[0];
    const baseline: number[] = [];
    // Rotation and baseline windows alternate, so both see the same machine at the same time.
    for (let i = 0; i < ROTATIONS; i++) {
      let loop = echoLoop(forwardPort);
      const r = await n1.run(['rotate-swarm-key', '--json'], { timeoutMs: 90_000 });
      assert.equal(r.code, 0, r.stderr);
      const rotated = JSON.parse(r.stdout) as { epoch: number; switchAt: number; behind: unknown[] };
      assert.deepEqual(rotated.behind, []);
      // Keep the loop running a few seconds past the switch, where a dropped link would show.
      await sleep(3000);
      const g = await loop.stop();
      gaps.push(g.maxGap);
      console.log(
        `# rotation to epoch ${rotated.epoch}: forward max gap ${g.maxGap} ms (from ${g.gapFrom - rotated.switchAt} ms after switchAt), ${g.echoes} echoes, ${g.failures} failed`,
      );
      loop = echoLoop(forwardPort);
      await sleep(ROTATION_WINDOW_MS);
      const b = await loop.stop();
      baseline.push(b.maxGap);
      console.log(`# no rotation: forward max gap ${b.maxGap} ms, ${b.echoes} echoes, ${b.failures} failed`);
    }
    const during = gaps.slice(1);
    console.log(
      `# forward max gap over ${during.length} rotations: median ${median(during)} ms, ` +
        `min ${Math.min(...during)}, max ${Math.max(...during)}; same-length windows without a rotation: ` +
        `median ${median(baseline)} ms, min ${Math.min(...baseline)}, max ${Math.max(...baseline)}`,
    );
    await cluster.waitConverged(30_000);
  });

  test('after revoke --rotate the revoked node and holders of old keys get no connection', async () => {
    const [n1, n2, n3] = cluster.nodes;
    const oldKey = keyFileOf(n3);
    // Control: a member's identity with the key in use connects (so a refusal below is the key's).
    assert.equal(await canConnect(n1, keyFileOf(n1), nodeKeyOf(n2)), true, 'control: a member connects');

    const r = await n1.run(['revoke', 'n3', '--rotate', '--json'], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { rotation: { epoch: number; revoked: string[]; behind: unknown[] } };
    assert.equal(out.rotation.epoch, ROTATIONS + 2);
    assert.equal(out.rotation.revoked.length, 1);
    assert.equal(keyFileOf(n3), oldKey, 'no member handed the revoked node the new key');

    await n3.stop();
    await n3.start();
    // Past REKEY_AFTER_MS: the restarted node asks the doors, and is refused there too.
    await waitFor(() => /asking join doors/.test(n3.output()), 40_000, 'n3 to try the join doors', 500);
    await sleep(3000);
    const peers = await n3.json<{ name: string; connection: string }[]>(['peers']);
    assert.deepEqual(
      peers.filter((p) => p.connection !== 'none').map((p) => p.name),
      [],
      'the revoked node has no connection to any member',
    );
    assert.equal(keyFileOf(n3), oldKey);

    // Anyone with the old key: a fresh identity, or even a live member's identity, gets no
    // connection at all; pnet fails before Noise.
    assert.equal(await canConnect(n1, oldKey), false, 'a stranger with the previous key');
    assert.equal(await canConnect(n1, epoch0Key.text), false, 'a stranger with the key from init');
    assert.equal(
      await canConnect(n1, oldKey, nodeKeyOf(n2)),
      false,
      'a member identity with the previous key',
    );
    assert.equal(
      await canConnect(n1, keyFileOf(n1), nodeKeyOf(n3)),
      false,
      'the revoked identity with the new key',
    );
  });
});
