/**
 * The remote client against an agent API played in-process (127.0.0.1): an honest entry that
 * relays to a proven target, and the inputs a hostile one can send before any signature helps:
 * an endless `GET /v1/node`, and an unsigned refusal full of terminal control characters.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeNetworkRecord } from '../../../src/cli/network-record.ts';
import { remoteClient } from '../../../src/cli/remote-client.ts';
import { decodeEnvelope, signFrame } from '../../../src/commands/envelope.ts';
import { generateSigner, writeKeyFile } from '../../../src/crypto/ed25519.ts';
import { networkIdOf } from '../../../src/mesh/token.ts';
import { identity, type TestIdentity, testNetwork } from '../../helpers/admissions.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-remote-'));
const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

const net = testNetwork();
const keyFile = join(dir, 'op.key');
const op = generateSigner();
writeKeyFile(keyFile, op.seed, op.signer);
writeNetworkRecord(keyFile, net.admin.publicKey);

const nodes: Record<string, TestIdentity> = { n1: identity(), n2: identity() };
const who = (name: string) => ({
  name,
  peerId: nodes[name].peerId,
  networkId: networkIdOf(net.admin.publicKey),
  admission: net.admit(nodes[name], name),
});

/** An API whose `/v1/node` body and command answers the test chooses. */
async function api(node: () => string, answer: (body: string) => string): Promise<string> {
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    if (req.url === '/v1/node') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(node());
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.end(answer(body));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe('remote client', () => {
  it('relays through a proven entry to a proven target, each frame signed by the target', async () => {
    const url = await api(
      () => JSON.stringify(who('n1')),
      (body) => {
        const { payload } = decodeEnvelope(JSON.parse(body.split('\n')[0]));
        const [name, result] =
          payload.action === 'node.resolve' ? ['n1', who('n2')] : ['n2', { ran: payload.action }];
        return `${JSON.stringify(signFrame(nodes[name].id.signer, payload.target, payload.id, 0, { type: 'result', result }))}\n`;
      },
    );
    const client = remoteClient({ url, keyFile, dataDir: dir, node: 'n2' });
    assert.deepEqual(await client.call('apps.list'), { ran: 'apps.list' });
  });

  it('an oversized GET /v1/node answer is refused without reading it all', async () => {
    const url = await api(
      () => JSON.stringify({ ...who('n1'), pad: 'x'.repeat(1024 * 1024) }),
      () => '',
    );
    await assert.rejects(remoteClient({ url, keyFile, dataDir: dir }).call('apps.list'), {
      name: 'CliError',
      message: /over 65536 bytes/,
    });
  });

  it('an unsigned refusal reaches the terminal as one line without control characters', async () => {
    const url = await api(
      () => JSON.stringify(who('n1')),
      () =>
        `${JSON.stringify({ type: 'error', error: { code: 'UNKNOWN_KEY', message: 'no\n\u001b[2Jplexus: ok\r' } })}\n`,
    );
    await assert.rejects(remoteClient({ url, keyFile, dataDir: dir }).call('apps.list'), (err: Error) => {
      assert.equal((err as { body?: { code: string } }).body?.code, 'UNKNOWN_KEY');
      assert.doesNotMatch(err.message, /[\n\r\u001b]/);
      return true;
    });
  });
});
