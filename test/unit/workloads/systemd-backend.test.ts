import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

describe('systemctl show', () => {
  it('maps unit states to app states', async () => {
    const { parseShow } = await import('../../../src/workloads/systemd-backend.ts');
    const show = (active: string, sub: string, pid = 0, restarts = 0) =>
      parseShow(
        `MainPID=${pid}\nActiveState=${active}\nSubState=${sub}\nNRestarts=${restarts}\nExecMainStartTimestamp=\n`,
      );
    assert.equal(show('active', 'running', 4242, 2).status, 'running');
    assert.equal(show('active', 'running', 4242, 2).restarts, 2);
    assert.equal(show('activating', 'auto-restart').status, 'crashloop');
    assert.equal(show('failed', 'failed').status, 'failed');
    assert.equal(show('inactive', 'dead').status, 'stopped');
    assert.equal(show('inactive', 'dead').pid, null);
  });
});
