/**
 * `plexus repair` (src/install/repair.ts) on a data dir in a temporary folder: loose key
 * permissions are reported by --diagnose and fixed otherwise, a broken config and a corrupt
 * database are reported with what to do, and an agent that does not answer is broken.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { installLayout } from '../../../src/install/layout.ts';
import { repair } from '../../../src/install/repair.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-repair-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const layout = installLayout({ prefix: join(dir, 'opt'), etc: join(dir, 'etc'), data: join(dir, 'data') });
mkdirSync(join(layout.data, 'keys'), { recursive: true, mode: 0o700 });
writeFileSync(join(layout.data, 'keys', 'node.key'), 'k', { mode: 0o600 });
mkdirSync(layout.etc, { recursive: true });
mkdirSync(layout.releases, { recursive: true });
const byCheck = async (diagnose: boolean) =>
  Object.fromEntries((await repair(layout, undefined, diagnose)).map((r) => [r.check, r]));

describe('repair', () => {
  it('--diagnose reports loose key permissions and changes nothing; repair fixes them', async () => {
    chmodSync(join(layout.data, 'keys', 'node.key'), 0o644);
    assert.equal((await byCheck(true)).keys.status, 'broken');
    assert.equal(statSync(join(layout.data, 'keys', 'node.key')).mode & 0o777, 0o644);
    assert.equal((await byCheck(false)).keys.status, 'fixed');
    assert.equal(statSync(join(layout.data, 'keys', 'node.key')).mode & 0o777, 0o600);
    assert.equal((await byCheck(false)).keys.status, 'ok');
  });

  it('a config that does not parse, a corrupt database and a silent agent are broken, with a hint', async () => {
    writeFileSync(layout.config, 'mesh: [not, a, mapping\n');
    writeFileSync(join(layout.data, 'plexus.db'), 'this is not SQLite'.repeat(100));
    const r = await byCheck(true);
    assert.equal(r.config.status, 'broken');
    assert.equal(r.database.status, 'broken');
    assert.equal(r.agent.status, 'broken');
    assert.match(r.agent.detail, /systemctl status plexus/);
    assert.equal(r.disk.status, 'ok');
  });
});
