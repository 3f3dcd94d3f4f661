/**
 * How the agent finds its bundle (src/runtime/launcher.mjs): a release install's prebuilt one,
 * run without a look at the sources; else one keyed by the sources.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { devBundlePath, runBundledAgent } from '../../../src/runtime/launcher.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'plexus-launcher-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** An installation with a dist/agent.mjs that records that it ran, and no src/ at all. */
function release(name: string, { stamp }: { stamp: boolean }): string {
  const root = join(tmp, name);
  mkdirSync(join(root, 'dist'), { recursive: true });
  writeFileSync(join(root, 'dist', 'agent.mjs'), `globalThis.plexusRan = ${JSON.stringify(name)};\n`);
  if (stamp) writeFileSync(join(root, 'dist', 'BUILD'), '{}\n');
  return root;
}

describe('runBundledAgent', () => {
  it("runs a release's prebuilt bundle without hashing the sources", async () => {
    // With no src/ to hash, only the release path can run anything.
    const root = release('stamped', { stamp: true });
    assert.equal(await runBundledAgent(root, join(root, 'cache')), true);
    assert.equal((globalThis as { plexusRan?: string }).plexusRan, 'stamped');
  });

  it('takes a dist/agent.mjs without its BUILD stamp for no release', async () => {
    const root = release('unstamped', { stamp: false });
    assert.equal(await runBundledAgent(root, join(root, 'cache')), false);
    assert.notEqual((globalThis as { plexusRan?: string }).plexusRan, 'unstamped');
  });

  it('runs nothing under PLEXUS_NO_BUNDLE=1', async () => {
    const root = release('disabled', { stamp: true });
    process.env.PLEXUS_NO_BUNDLE = '1';
    try {
      assert.equal(await runBundledAgent(root, join(root, 'cache')), false);
    } finally {
      delete process.env.PLEXUS_NO_BUNDLE;
    }
  });
});

describe('devBundlePath', () => {
  const root = join(tmp, 'checkout');
  mkdirSync(join(root, 'src'), { recursive: true });

  it('changes with any source file', () => {
    writeFileSync(join(root, 'src', 'a.ts'), 'export const a = 1;\n');
    const first = devBundlePath(root, join(root, '.tools', 'compile-cache'));
    assert.match(first ?? '', /agent-[0-9a-f]{16}\.mjs$/);
    assert.equal(devBundlePath(root, join(root, '.tools', 'compile-cache')), first);
    writeFileSync(join(root, 'src', 'a.ts'), 'export const a = 12;\n');
    const second = devBundlePath(root, join(root, '.tools', 'compile-cache'));
    assert.notEqual(second, first);
    // A new or changed patch to a dependency changes the bundle as much as a source does.
    mkdirSync(join(root, 'patches'));
    writeFileSync(join(root, 'patches', 'x+1.0.0.patch'), 'diff\n');
    assert.notEqual(devBundlePath(root, join(root, '.tools', 'compile-cache')), second);
  });

  it('has none for a cache outside the checkout (its packages would not resolve)', () => {
    assert.equal(devBundlePath(root, join(tmp, 'elsewhere')), undefined);
  });
});
