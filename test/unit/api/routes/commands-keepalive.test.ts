/**
 * `POST /v1/commands` over one keep-alive connection, as node's default HTTP agent and the remote
 * CLI use it (`/v1/node`, `node.resolve`, then the command): a request that ran to its end leaves
 * the connection reusable, and the drop timer a refused or unread body arms (dropAfterReply)
 * never cuts a later request on it, even one that outlasts the timer. A browser's connection is
 * closed after each answer instead (docs/ui.md).
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { signCommand } from '../../../../src/commands/envelope.ts';
import { ActionRegistry, defineAction } from '../../../../src/core/actions.ts';
import { generateSigner } from '../../../../src/crypto/ed25519.ts';
import { commandApi } from '../../../helpers/commands.ts';

const admin = generateSigner().signer;

describe('POST /v1/commands keep-alive', () => {
  /** A test API, and `run(ms, headers)`: one signed command over a kept-alive agent. */
  async function setup(t: import('node:test').TestContext) {
    const actions = new ActionRegistry();
    actions.register(
      defineAction({
        name: 'test.read',
        describe: 'r',
        access: 'read',
        args: z.object({ ms: z.number().int().min(0).max(5000).default(0) }),
        handler: async (args) => {
          await sleep(args.ms);
          return 'ok';
        },
      }),
    );
    const { self, port } = await commandApi(t, { admin, actions });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const sockets = new Set<unknown>();
    const run = (ms: number, headers: Record<string, string> = {}) =>
      new Promise<{ body: string; connection?: string }>((resolve, reject) => {
        const { envelope } = signCommand(admin, { target: self, action: 'test.read', args: { ms } });
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/v1/commands',
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/x-ndjson', ...headers },
          },
          (res) => {
            let body = '';
            res.on('data', (d) => {
              body += d;
            });
            res.on('end', () => resolve({ body, connection: res.headers.connection }));
            res.on('error', reject);
          },
        );
        req.on('socket', (s) => sockets.add(s));
        req.on('error', reject);
        req.end(`${JSON.stringify(envelope)}\n`);
      });
    return { run, sockets };
  }

  it('three requests on one connection, the last one slow, all complete on the same socket', async (t) => {
    const { run, sockets } = await setup(t);
    assert.match((await run(0)).body, /"result":"ok"/);
    assert.match((await run(0)).body, /"result":"ok"/);
    // Longer than the old 2 s drop timer armed by the requests before it.
    assert.match((await run(2600)).body, /"result":"ok"/);
    assert.equal(sockets.size, 1, 'the connection was reused');
  });

  it("a browser's command is answered on a connection that then closes, so it is never resent", async (t) => {
    // Chromium resends a request whose reused connection closed before the answer; a signed
    // command resent is refused as a REPLAY and its answer is lost. A connection a browser
    // never reuses is never resent on. Browsers send Sec-Fetch-Mode on every request.
    const { run, sockets } = await setup(t);
    const browser = { 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin' };
    const first = await run(0, browser);
    assert.match(first.body, /"result":"ok"/);
    assert.equal(first.connection, 'close');
    assert.match((await run(0, browser)).body, /"result":"ok"/);
    assert.equal(sockets.size, 2, 'a new connection for each');
  });
});
