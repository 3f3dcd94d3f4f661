/** The action registry: validation, unknown actions, and unexpected errors kept out of the answer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ActionRegistry, defineAction } from '../../../src/core/actions.ts';
import { PlexusError } from '../../../src/core/errors.ts';
import { sinkLogger } from '../../helpers/telemetry.ts';

const ctx = () => ({
  caller: { kind: 'local' as const, kid: 'local', role: 'admin' as const },
  signal: new AbortController().signal,
  emit: async () => {},
  input: (async function* () {})(),
});

function setup() {
  const { logger, lines } = sinkLogger();
  const actions = new ActionRegistry({ logger });
  actions.register(
    defineAction({
      name: 'test.add',
      describe: 'adds',
      access: 'read',
      args: z.object({ a: z.number(), b: z.number().default(1) }),
      handler: async ({ a, b }) => a + b,
    }),
    defineAction({
      name: 'test.fail',
      describe: 'fails',
      access: 'read',
      args: z.object({ expected: z.boolean() }),
      handler: async ({ expected }) => {
        throw expected
          ? new PlexusError('APP_MISSING', 'no such app', 'not_found')
          : new Error('disk on fire');
      },
    }),
  );
  return { actions, lines };
}

describe('action registry', () => {
  it('validates arguments (defaults filled) and returns a result frame', async () => {
    const { actions } = setup();
    assert.deepEqual(await actions.run('test.add', { a: 2 }, ctx()), { type: 'result', result: 3 });
    assert.deepEqual(actions.names(), ['test.add', 'test.fail']);
  });

  it('bad arguments are INVALID_ARGUMENT naming the field; an unknown name is UNKNOWN_ACTION', async () => {
    const { actions } = setup();
    const bad = await actions.run('test.add', { a: 'two' }, ctx());
    assert.equal(bad.type === 'error' && bad.error.code, 'INVALID_ARGUMENT');
    assert.match(bad.type === 'error' ? bad.error.message : '', /^test\.add: a: /);
    const unknown = await actions.run('test.nope', {}, ctx());
    assert.deepEqual(unknown.type === 'error' && [unknown.error.code, unknown.error.kind], [
      'UNKNOWN_ACTION',
      'not_found',
    ]);
  });

  it('a domain error is answered as is; any other error is INTERNAL, logged with its stack', async () => {
    const { actions, lines } = setup();
    const expected = await actions.run('test.fail', { expected: true }, ctx());
    assert.deepEqual(expected, {
      type: 'error',
      error: { code: 'APP_MISSING', message: 'no such app', kind: 'not_found' },
    });
    assert.equal(lines.length, 0);
    const unexpected = await actions.run('test.fail', { expected: false }, ctx());
    assert.equal(unexpected.type === 'error' && unexpected.error.code, 'INTERNAL');
    assert.doesNotMatch(JSON.stringify(unexpected), /disk on fire/);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].action, 'test.fail');
    assert.match(String((lines[0].err as { stack: string }).stack), /disk on fire/);
  });

  it('registering a name twice is a programming error', () => {
    const { actions } = setup();
    assert.throws(() =>
      actions.register(
        defineAction({
          name: 'test.add',
          describe: '',
          access: 'read',
          args: z.object({}),
          handler: async () => 0,
        }),
      ),
    );
  });
});
