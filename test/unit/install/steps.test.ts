/** Install steps (src/install/steps.ts): idempotent, and a dry run changes nothing. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { installLayout } from '../../../src/install/layout.ts';
import { fileStep, linkStep, removeStep, runSteps } from '../../../src/install/steps.ts';
import { pruneReleases, switchTo, versionAt } from '../../../src/install/switch.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-steps-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('install steps', () => {
  it('a dry run prints every step and changes nothing; a second run changes nothing', () => {
    const steps = [
      fileStep(join(dir, 'a', 'f'), 'x\n'),
      linkStep(join(dir, 'l'), 'a/f'),
      removeStep(join(dir, 'gone')),
    ];
    const lines: string[] = [];
    assert.equal(runSteps(steps, { dryRun: true, log: (l) => lines.push(l) }), 0);
    assert.deepEqual(
      lines.map((l) => l.split(' ')[0]),
      ['would', 'would', 'ok'],
    );
    assert.equal(existsSync(join(dir, 'a')), false);
    assert.equal(runSteps(steps, { dryRun: false, log: () => {} }), 2);
    assert.equal(readFileSync(join(dir, 'a', 'f'), 'utf8'), 'x\n');
    assert.equal(readlinkSync(join(dir, 'l')), 'a/f');
    assert.equal(runSteps(steps, { dryRun: false, log: () => {} }), 0);
  });

  it('switches current atomically, remembers previous, prunes neither', () => {
    const layout = installLayout({
      prefix: join(dir, 'opt'),
      etc: join(dir, 'etc'),
      data: join(dir, 'data'),
    });
    for (const v of ['1.0.0', '1.0.1', '1.0.2', '1.0.3', '1.0.4'])
      mkdirSync(join(layout.releases, v), { recursive: true });
    switchTo(layout, '1.0.0');
    switchTo(layout, '1.0.1');
    assert.equal(versionAt(layout.current), '1.0.1');
    assert.equal(versionAt(layout.previous), '1.0.0');
    const removed = pruneReleases(layout);
    assert.equal(removed.length, 2);
    assert.ok(existsSync(join(layout.releases, '1.0.0')) && existsSync(join(layout.releases, '1.0.1')));
  });
});
