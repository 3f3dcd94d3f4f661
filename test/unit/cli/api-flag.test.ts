import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { takeApiFlag } from '../../../src/cli/api-flag.ts';

const run = (args: string[]) => {
  const argv = ['node', 'main.ts', ...args];
  const env: NodeJS.ProcessEnv = {};
  takeApiFlag(argv, env);
  return { rest: argv.slice(2), api: env.PLEXUS_API };
};

describe('--api flag', () => {
  it('is taken from before or after the verb', () => {
    assert.deepEqual(run(['--api', 'http://h:1', '--key', 'k', 'apps', '--node', 'n']), {
      rest: ['--key', 'k', 'apps', '--node', 'n'],
      api: 'http://h:1',
    });
    assert.deepEqual(run(['apps', '--api=http://h:2', '--json']), {
      rest: ['apps', '--json'],
      api: 'http://h:2',
    });
  });

  it('leaves init/join (their own --api) and everything after -- alone', () => {
    assert.deepEqual(run(['init', '--api', '127.0.0.1:7071']), {
      rest: ['init', '--api', '127.0.0.1:7071'],
      api: undefined,
    });
    assert.deepEqual(run(['--data-dir', 'd', 'join', 'T', '--api', 'x:1']).api, undefined);
    assert.deepEqual(run(['exec', 'n', '--', 'curl', '--api', 'x']), {
      rest: ['exec', 'n', '--', 'curl', '--api', 'x'],
      api: undefined,
    });
  });
});
