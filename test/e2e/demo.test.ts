/** `scripts/demo --once` must keep working: it is the first thing a newcomer runs. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/cluster.ts';

describe('scripts/demo', () => {
  it('starts a three-node mesh, deploys the sample app and reaches it over the mesh', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plexus-demo-'));
    try {
      const { stdout } = await promisify(execFile)(join(ROOT, 'scripts', 'demo'), ['--once'], {
        env: { ...process.env, PLEXUS_DEMO_DIR: join(dir, 'demo') },
        timeout: 180_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      assert.match(stdout, /online links: 6\/6/);
      assert.match(stdout, /3 sent, 3 received, 0 lost/);
      // The sample app on n2, reached from n3 through a forward and through SOCKS5.
      assert.equal(stdout.match(/hello from n2 \(pid \d+/g)?.length, 2);
      assert.match(stdout, /hello\s+running/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
