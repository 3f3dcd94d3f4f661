import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { safeEntryPath } from '../../../src/workloads/extract-checks.ts';

describe('archive entry checks', () => {
  it('safeEntryPath normalises harmless names and rejects Windows-style escapes', () => {
    assert.equal(safeEntryPath('./a//b/./c.txt'), 'a/b/c.txt');
    assert.throws(() => safeEntryPath('..\\..\\x'), { code: 'ZIP_SLIP' });
    assert.throws(() => safeEntryPath('C:/Windows'), { code: 'ZIP_SLIP' });
  });
});
