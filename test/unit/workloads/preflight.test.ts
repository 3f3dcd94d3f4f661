import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkCommand, firstProgram } from '../../../src/workloads/preflight.ts';

const tmp = mkdtempSync(join(tmpdir(), 'plexus-wl-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('command preflight', () => {
  it('finds the program of a command, or refuses a missing one', () => {
    assert.equal(firstProgram('FOO=1 node server.js'), 'node');
    assert.equal(firstProgram('$HOME/bin/x'), undefined);
    writeFileSync(join(tmp, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    checkCommand('./run.sh --flag', tmp, '/usr/bin:/bin');
    checkCommand('sh -c true', tmp, '/usr/bin:/bin');
    assert.throws(() => checkCommand('definitely-not-a-program-xyz', tmp, '/usr/bin:/bin'), {
      code: 'COMMAND_NOT_FOUND',
    });
    assert.throws(() => checkCommand('./missing.sh', tmp, '/usr/bin:/bin'), { code: 'COMMAND_NOT_FOUND' });
  });
});
