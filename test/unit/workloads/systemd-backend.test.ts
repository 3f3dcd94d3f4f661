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

describe('journal lines', () => {
  it('carry the time journald captured them, in the form of the process backend files', async () => {
    const { journalLine } = await import('../../../src/workloads/systemd-backend.ts');
    const us = Date.parse('2026-12-06T11:55:00.123Z') * 1000 + 456;
    assert.equal(
      journalLine(JSON.stringify({ __REALTIME_TIMESTAMP: String(us), MESSAGE: 'listening' })),
      '2026-12-06T11:55:00.123Z listening',
    );
    // Not UTF-8 text: journald gives bytes; a message over its limit: null.
    const bytes = [...Buffer.from('héllo')];
    assert.equal(
      journalLine(JSON.stringify({ __REALTIME_TIMESTAMP: String(us), MESSAGE: bytes })),
      '2026-12-06T11:55:00.123Z héllo',
    );
    assert.equal(
      journalLine(JSON.stringify({ __REALTIME_TIMESTAMP: String(us), MESSAGE: null })),
      '2026-12-06T11:55:00.123Z ',
    );
    assert.equal(journalLine(''), undefined);
    assert.equal(journalLine('not json'), undefined);
  });
});
