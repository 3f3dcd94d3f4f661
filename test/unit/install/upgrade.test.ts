/**
 * The health gate of an upgrade (src/install/upgrade.ts), with a fake unit: a release whose agent
 * keeps exiting is rolled back once the exits prove it, not at the end of the 60 s budget; one
 * that never answers is rolled back at the end of the budget; a healthy one stays.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { UpgradeRolledBackError } from '../../../src/install/errors.ts';
import { installLayout } from '../../../src/install/layout.ts';
import { pointAt, versionAt } from '../../../src/install/switch.ts';
import { rollback, type UpgradeComponents } from '../../../src/install/upgrade.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** An install with 1.0.0 (previous) and 2.0.0 (current): `rollback` switches to 1.0.0. */
function install() {
  const prefix = mkdtempSync(join(tmpdir(), 'plexus-upgrade-'));
  dirs.push(prefix);
  const layout = installLayout({ prefix, etc: join(prefix, 'etc'), data: join(prefix, 'data') });
  for (const v of ['1.0.0', '2.0.0']) mkdirSync(join(layout.releases, v), { recursive: true });
  pointAt(layout.current, join('releases', '2.0.0'));
  pointAt(layout.previous, join('releases', '1.0.0'));
  return layout;
}

/** A unit running whatever `current` names; versions in `broken` exit at once and are restarted. */
function fakeUnit(layout: ReturnType<typeof installLayout>, broken: Set<string>, withRestarts = true) {
  let restarts = 0;
  let startedAt = Date.now();
  const c: UpgradeComponents & { restartCalls: number } = {
    restartCalls: 0,
    async restart() {
      c.restartCalls++;
      startedAt = Date.now();
    },
    async probe() {
      const v = versionAt(layout.current) ?? '';
      if (!broken.has(v)) return { version: v, peersOnline: 0 };
      // Exits every 200 ms; the service manager restarts it each time.
      restarts = Math.max(restarts, Math.floor((Date.now() - startedAt) / 200));
      return undefined;
    },
    log() {},
    healthTimeoutMs: 3000,
  };
  if (withRestarts) c.restarts = async () => restarts;
  return c;
}

describe('upgrade health gate', () => {
  it('a release whose agent keeps exiting is rolled back as soon as it has exited twice', async () => {
    const layout = install();
    const c = fakeUnit(layout, new Set(['1.0.0']));
    const t0 = Date.now();
    const err = await rollback(layout, c).then(
      () => assert.fail('expected a rollback'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof UpgradeRolledBackError, String(err));
    assert.match(
      err.message,
      /upgrade to 1\.0\.0 rolled back: the agent exited \d+ times in \d+ s; 2\.0\.0 is running again/,
    );
    assert.ok(Date.now() - t0 < 2000, `rolled back after ${Date.now() - t0} ms, not at the 3 s budget`);
    assert.equal(versionAt(layout.current), '2.0.0');
    assert.equal(c.restartCalls, 2);
  });

  it('without a restart count, an agent that never answers is rolled back at the end of the budget', async () => {
    const layout = install();
    const c = fakeUnit(layout, new Set(['1.0.0']), false);
    const t0 = Date.now();
    const err = await rollback(layout, c).then(
      () => assert.fail('expected a rollback'),
      (e: unknown) => e,
    );
    assert.match(String(err), /did not become healthy within 3 s \(no answer from the agent\)/);
    assert.ok(Date.now() - t0 >= 3000);
    assert.equal(versionAt(layout.current), '2.0.0');
  });

  it('a unit that refuses to start is rolled back at once, and the message says the restart failed', async () => {
    const layout = install();
    const c = fakeUnit(layout, new Set(['1.0.0']));
    const restart = c.restart;
    c.restart = async () => {
      await restart();
      if (versionAt(layout.current) === '1.0.0')
        throw new Error('Command failed: systemctl restart plexus.service');
    };
    const t0 = Date.now();
    const err = await rollback(layout, c).then(
      () => assert.fail('expected a rollback'),
      (e: unknown) => e,
    );
    assert.match(String(err), /rolled back: the restart failed: Command failed: systemctl restart/);
    assert.doesNotMatch(String(err), /within \d+ s/);
    assert.ok(Date.now() - t0 < 1000, `rolled back after ${Date.now() - t0} ms`);
    assert.equal(versionAt(layout.current), '2.0.0');
  });

  it('a healthy release stays', async () => {
    const layout = install();
    const c = fakeUnit(layout, new Set());
    const r = await rollback(layout, c);
    assert.equal(r.to, '1.0.0');
    assert.equal(versionAt(layout.current), '1.0.0');
  });
});
