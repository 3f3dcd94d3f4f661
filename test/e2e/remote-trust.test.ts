/**
 * The remote CLI verifies who answers (issue 12): before it trusts a peer id it checks the
 * entry node's admission, and the target's, back to the network's admin key, which
 * `operator keygen --admin` / `operator use` record next to the operator key. Fake entry nodes
 * (HTTP servers in this test, on 127.0.0.1) answer for the target in every way we could think
 * of; the CLI must refuse each, print nothing the fake planted, and name the node that sent the
 * reply (its name, the end of its peer id, and the API URL).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeEnvelope, signFrame } from '../../src/commands/envelope.ts';
import { b64u, generateSigner, type Signer } from '../../src/crypto/ed25519.ts';
import { parseNodeKey } from '../../src/mesh/keys.ts';
import { peerIdOf } from '../../src/mesh/peer-ids.ts';
import { identity, type TestIdentity, testNetwork } from '../helpers/admissions.ts';
import { type Cluster, freePort, plexus, startCluster } from '../helpers/cluster.ts';
import { httpText } from '../helpers/http.ts';

interface NodeAnswer {
  name: string;
  peerId: string;
  networkId?: string;
  admission?: unknown;
}

const PLANTED = [{ name: 'planted-by-the-fake' }];
const servers: Server[] = [];

/**
 * An HTTP server posing as an agent's API: `node` answers `GET /v1/node`; every command is
 * answered by `signer`, in the name of the peer it was addressed to: `node.resolve` with
 * `resolved`, anything else with PLANTED.
 */
async function fakeEntry(init: {
  node: () => Promise<NodeAnswer> | NodeAnswer;
  signer: Signer;
  resolved: unknown;
}): Promise<string> {
  const port = await freePort();
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const c of req) body += c;
    if (req.method === 'GET' && req.url === '/v1/node') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(await init.node()));
      return;
    }
    const { payload } = decodeEnvelope(JSON.parse(body.split('\n')[0]));
    const result = payload.action === 'node.resolve' ? init.resolved : PLANTED;
    const frame = signFrame(init.signer, payload.target, payload.id, 0, { type: 'result', result });
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.end(`${JSON.stringify(frame)}\n`);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return `http://127.0.0.1:${port}`;
}

/** An admission for `name` from a network of the attacker's own making. */
const madeUpAdmission = (node: TestIdentity, name: string) => testNetwork().admit(node, name);

/** The real entry's `GET /v1/node` answer. */
async function nodeAnswerOf(port: number): Promise<NodeAnswer> {
  return JSON.parse((await httpText(port, '/v1/node')).body) as NodeAnswer;
}

describe('the remote CLI verifies who answers', () => {
  let cluster: Cluster;
  let api1: string;
  let adminKey: string;
  let laptop: string;
  let realN1: NodeAnswer;

  before(async () => {
    cluster = await startCluster(2);
    api1 = `http://127.0.0.1:${cluster.nodes[0].apiPort}`;
    adminKey = join(cluster.nodes[0].dataDir, 'keys', 'admin.key');
    // A data dir with no agent and no network: an operator's laptop.
    laptop = join(cluster.root, 'laptop');
    realN1 = await nodeAnswerOf(cluster.nodes[0].apiPort);
  });
  after(async () => {
    for (const s of servers) s.close();
    await cluster?.stop();
  });

  /** `plexus --api URL --key KEY apps --node n2 --json` from the laptop. */
  const appsVia = (url: string, key = adminKey, node = 'n2') =>
    plexus(['--api', url, '--key', key, '--data-dir', laptop, 'apps', '--node', node, '--json']);

  const refused = (
    r: { code: number; stdout: string; stderr: string },
    sender: { name: string; peerId: string; url: string },
  ) => {
    assert.equal(r.code, 1, `the CLI must refuse; it printed ${r.stdout}`);
    assert.doesNotMatch(r.stdout, /planted/);
    const line = r.stderr.trim();
    assert.equal(line.split('\n').length, 1, `one line: ${line}`);
    assert.ok(line.includes(sender.url), `names the API URL: ${line}`);
    assert.ok(line.includes(sender.name), `names the node ${sender.name}: ${line}`);
    assert.ok(line.includes(sender.peerId.slice(-6)), `names its peer id: ${line}`);
  };

  it("GET /v1/node shows the entry agent's admission and network id", async () => {
    assert.equal(realN1.name, 'n1');
    assert.match(String(realN1.networkId), /^plx-[a-z0-9]{16}$/);
    assert.equal(typeof (realN1.admission as { ts?: unknown })?.ts, 'string');
  });

  it('a fake entry with an admission from another admin key is refused', async () => {
    const fake = identity();
    const url = await fakeEntry({
      node: () => ({
        name: 'n1',
        peerId: fake.peerId,
        networkId: realN1.networkId,
        admission: madeUpAdmission(fake, 'n1'),
      }),
      signer: fake.id.signer,
      resolved: { name: 'n2', peerId: fake.peerId },
    });
    refused(await appsVia(url), { name: 'n1', peerId: fake.peerId, url });
  });

  it("a fake entry showing a real member's admission but signing with its own key is refused", async () => {
    const fake = generateSigner().signer;
    const url = await fakeEntry({
      node: () => realN1,
      signer: fake,
      resolved: { name: 'n2', peerId: peerIdOf(fake.publicKey) },
    });
    refused(await appsVia(url), { name: 'n1', peerId: realN1.peerId, url });
  });

  it("a proxy to the real entry that swaps in the attacker's peer id and answers node.resolve itself is refused", async () => {
    const attacker = generateSigner().signer;
    const attackerPeer = peerIdOf(attacker.publicKey);
    const url = await fakeEntry({
      // The real n1's answer, admission and all, with the attacker's peer id.
      node: async () => ({ ...(await nodeAnswerOf(cluster.nodes[0].apiPort)), peerId: attackerPeer }),
      signer: attacker,
      resolved: { name: 'n2', peerId: attackerPeer, admission: realN1.admission },
    });
    refused(await appsVia(url), { name: 'n1', peerId: attackerPeer, url });
  });

  it('a compromised real member that resolves n2 to itself is refused, and named', async () => {
    // The fake holds n1's own node key: it signs as n1, and answers for n2 with n1's admission.
    const n1 = parseNodeKey(readFileSync(join(cluster.nodes[0].dataDir, 'keys', 'node.key'))).signer;
    const url = await fakeEntry({
      node: () => realN1,
      signer: n1,
      resolved: { name: 'n2', peerId: realN1.peerId, admission: realN1.admission },
    });
    refused(await appsVia(url), { name: 'n1', peerId: realN1.peerId, url });
  });

  it('works through the real entry with the admin key recorded by operator keygen --admin', async () => {
    const key = join(cluster.root, 'ci.key');
    const network = join(cluster.nodes[1].dataDir, 'keys', 'network.json');
    const k = await plexus(['operator', 'keygen', '--out', key, '--admin', network, '--data-dir', laptop]);
    assert.equal(k.code, 0, k.stderr);
    const grant = await cluster.nodes[0].run(['operator', 'add', '--pub', `${key}.pub`, '--role', 'viewer']);
    assert.equal(grant.code, 0, grant.stderr);
    const r = await appsVia(api1, key);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), []);
    // By peer id too: the CLI resolves it through the entry and checks the admission names it.
    const n2 = (await cluster.nodes[1].json<{ peerId: string }>(['status'])).peerId;
    const byId = await appsVia(api1, key, n2);
    assert.equal(byId.code, 0, byId.stderr);
  });

  it("without a recorded admin key a remote call fails with one line naming 'plexus operator use'; use records it", async () => {
    const key = join(cluster.root, 'laptop.key');
    assert.equal((await plexus(['operator', 'keygen', '--out', key, '--data-dir', laptop])).code, 0);
    const grant = await cluster.nodes[0].run(['operator', 'add', '--pub', `${key}.pub`, '--role', 'viewer']);
    assert.equal(grant.code, 0, grant.stderr);
    const before = await appsVia(api1, key);
    assert.equal(before.code, 1);
    assert.match(before.stderr.trim(), /^plexus: [^\n]*plexus operator use [^\n]*--admin/);
    // The admin's public key, as `operator keygen`'s .pub or a 43-character string.
    const adminPub = JSON.parse(readFileSync(adminKey, 'utf8')).publicKey as string;
    const use = await plexus(['operator', 'use', key, '--admin', adminPub, '--data-dir', laptop]);
    assert.equal(use.code, 0, use.stderr);
    const r = await appsVia(api1, key);
    assert.equal(r.code, 0, r.stderr);
    // A record for another network: the entry is refused, by name.
    const other = generateSigner().signer;
    const wrong = await plexus([
      'operator',
      'use',
      key,
      '--admin',
      b64u(other.publicKey),
      '--data-dir',
      laptop,
    ]);
    assert.equal(wrong.code, 0, wrong.stderr);
    refused(await appsVia(api1, key), { name: 'n1', peerId: realN1.peerId, url: api1 });
  });
});
