/**
 * The control socket: an answer given before the client has sent all its input must reach the
 * client. CI once saw `plexus upgrade --node` print "cannot reach the agent: write EPIPE" instead of
 * the far node's refusal, because the agent closed the socket under the CLI's upload.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { createControlSocket } from '../../../src/api/control-socket.ts';
import { RemoteError, socketClient } from '../../../src/cli/client.ts';
import { ActionRegistry, defineAction } from '../../../src/core/actions.ts';
import { PlexusError } from '../../../src/core/errors.ts';
import { sinkLogger } from '../../helpers/telemetry.ts';

describe('control socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plexus-ctl-'));
  const path = join(dir, 'plexus.sock');
  const { logger } = sinkLogger();
  const actions = new ActionRegistry({ logger });
  let firstPieceSeen = 0;
  actions.register(
    defineAction({
      name: 'test.refuse-upload',
      describe: 'reads one piece of input, then refuses',
      access: 'write',
      args: z.object({}),
      handler: async (_args, ctx) => {
        for await (const _piece of ctx.input) {
          firstPieceSeen++;
          break;
        }
        throw new PlexusError('UPGRADE_REFUSED', 'SHA256SUMS is signed by release key abc', 'invalid');
      },
    }),
    defineAction({
      name: 'test.echo',
      describe: 'answers',
      access: 'read',
      args: z.object({}),
      handler: async () => 'ok',
    }),
  );
  const server = createControlSocket({ path }, { actions, logger });
  before(() => server.start());
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a refusal given mid-upload reaches the client as the refusal, not EPIPE', async () => {
    const client = socketClient(path);
    const piece = 'x'.repeat(256 * 1024);
    for (let round = 0; round < 5; round++) {
      const input = (async function* () {
        // 64 MiB: far more than the socket buffers hold, so the agent answers long before the end.
        for (let i = 0; i < 256; i++) yield { piece };
      })();
      const err = await client.call('test.refuse-upload', {}, { input }).then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RemoteError, `round ${round}: ${(err as Error).message}`);
      assert.equal(err.body.code, 'UPGRADE_REFUSED');
    }
    assert.equal(firstPieceSeen, 5);
    // The agent still answers.
    assert.equal(await client.call('test.echo'), 'ok');
  });
});
