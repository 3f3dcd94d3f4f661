/**
 * `POST /v1/commands` over one keep-alive connection, as node's default HTTP agent and the remote
 * CLI use it (`/v1/node`, `node.resolve`, then the command): a request that ran to its end leaves
 * the connection reusable, and the drop timer a refused or unread body arms (dropAfterReply)
 * never cuts a later request on it, even one that outlasts the timer.
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
  it('three requests on one connection, the last one slow, all complete on the same socket', async (t) => {
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
    const run = (ms: number) =>
      new Promise<string>((resolve, reject) => {
        const { envelope } = signCommand(admin, { target: self, action: 'test.read', args: { ms } });
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/v1/commands',
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/x-ndjson' },
          },
          (res) => {
            let body = '';
            res.on('data', (d) => {
              body += d;
            });
            res.on('end', () => resolve(body));
            res.on('error', reject);
          },
        );
        req.on('socket', (s) => sockets.add(s));
        req.on('error', reject);
        req.end(`${JSON.stringify(envelope)}\n`);
      });
    assert.match(await run(0), /"result":"ok"/);
    assert.match(await run(0), /"result":"ok"/);
    // Longer than the old 2 s drop timer armed by the requests before it.
    assert.match(await run(2600), /"result":"ok"/);
    assert.equal(sockets.size, 1, 'the connection was reused');
  });
});
