/**
 * `plexus upgrade` on one host: verify, unpack beside the running version, switch `current`,
 * restart the unit, and wait for the new agent to answer with its new version and be back in the
 * mesh. When it is not within the budget (60 s), switch back and restart the old one, and say so.
 * Apps keep running throughout: the unit's KillMode=process leaves them alone and the new agent
 * re-adopts them (docs/workloads.md).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { HEALTH_TIMEOUT_MS } from './constants.ts';
import {
  NoPreviousReleaseError,
  NotInstalledError,
  ReleaseRefusedError,
  UpgradeRolledBackError,
} from './errors.ts';
import type { InstallLayout } from './layout.ts';
import { type ReleaseProof, unpackRelease, verifyRelease } from './release-archive.ts';
import { pointAt, pruneReleases, switchTo, versionAt } from './switch.ts';

/** What the local agent says when asked (node.status), or undefined when it does not answer. */
export interface AgentHealth {
  version: string;
  peersOnline: number;
}

/** What an upgrade needs from outside: restarting the unit and asking the agent. */
export interface UpgradeComponents {
  /** Restarts the agent (systemctl restart plexus.service). */
  restart(): Promise<void>;
  /** Asks the running agent; undefined when it does not answer. */
  probe(): Promise<AgentHealth | undefined>;
  /**
   * How many times the service manager has restarted the agent after it exited (systemd's
   * NRestarts), undefined when unknown. A release whose agent keeps exiting is rolled back as
   * soon as that is plain, not at the end of the budget.
   */
  restarts?(): Promise<number | undefined>;
  /** Progress lines for the operator. */
  log(line: string): void;
  /** The health budget (tests shorten it). */
  healthTimeoutMs?: number;
}

/** The outcome of an upgrade or rollback that went through. */
export interface UpgradeResult {
  from?: string;
  to: string;
  /** From the restart (the old agent stopping) until the new one answered with its version and peers. */
  downtimeMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Exits of the new agent (seen as automatic restarts) that prove it cannot start. One could be
 * bad luck (a port not yet free); the unit restarts after 2 s, so this takes about 5 s.
 */
export const CRASH_LOOP_EXITS = 2;

/**
 * Waits until the agent answers as `version`, back with peers when it had some before; else
 * says what it last saw when the budget runs out.
 */
async function waitHealthy(
  c: UpgradeComponents,
  version: string,
  peersBefore: number,
): Promise<{ ok: true } | { ok: false; seen: string; crashLoop?: true }> {
  const start = Date.now();
  const budget = c.healthTimeoutMs ?? HEALTH_TIMEOUT_MS;
  const restartsAtStart = await c.restarts?.().catch(() => undefined);
  let seen = 'no answer from the agent';
  while (Date.now() - start < budget) {
    const h = await c.probe().catch(() => undefined);
    if (!h && restartsAtStart !== undefined) {
      const now = await c.restarts?.().catch(() => undefined);
      const exits = now === undefined ? 0 : now - restartsAtStart;
      if (exits >= CRASH_LOOP_EXITS) {
        const s = Math.round((Date.now() - start) / 1000);
        return { ok: false, seen: `the agent exited ${exits} times in ${s} s`, crashLoop: true };
      }
    }
    if (h && h.version !== version) seen = `the agent still answers as ${h.version}`;
    else if (h && peersBefore > 0 && h.peersOnline === 0)
      seen = `${version} answers but has not rejoined the mesh`;
    else if (h) return { ok: true };
    await sleep(250);
  }
  return { ok: false, seen };
}

/** Switches to `to`, restarts, waits; rolls back to `from` when the new one is not healthy. */
async function switchAndWatch(
  layout: InstallLayout,
  to: string,
  c: UpgradeComponents,
): Promise<UpgradeResult> {
  const before = await c.probe().catch(() => undefined);
  const previousBefore = versionAt(layout.previous);
  const { from } = switchTo(layout, to);
  c.log(`switched ${layout.current} to ${to}${from ? ` (was ${from})` : ''}; restarting the agent`);
  const t0 = Date.now();
  // A unit that fails to start makes `systemctl restart` fail: that is an unhealthy release too.
  const restarted = await c.restart().then(
    () => undefined,
    (err: Error) => `the restart failed: ${err.message.split('\n')[0]}`,
  );
  const up = restarted
    ? ({ ok: false, seen: restarted } as const)
    : await waitHealthy(c, to, before?.peersOnline ?? 0);
  if (up.ok) return { from, to, downtimeMs: Date.now() - t0 };
  const budgetS = Math.round((c.healthTimeoutMs ?? HEALTH_TIMEOUT_MS) / 1000);
  // A restart that failed or an agent that keeps exiting failed at once: no budget ran out.
  const why =
    'crashLoop' in up || restarted ? up.seen : `it did not become healthy within ${budgetS} s (${up.seen})`;
  if (!from)
    throw new UpgradeRolledBackError(`${to} failed: ${why}, and there is no earlier version to go back to`);
  c.log(`${to} failed: ${why}; rolling back to ${from}`);
  switchTo(layout, from);
  // As it was: `--rollback` must not lead back to the release that just failed.
  if (previousBefore) pointAt(layout.previous, join('releases', previousBefore));
  else rmSync(layout.previous, { force: true });
  await c.restart().catch(() => {}); // waitHealthy below says whether the old one came back
  const back = await waitHealthy(c, from, 0);
  throw new UpgradeRolledBackError(
    `upgrade to ${to} rolled back: ${why}; ${from} is ${back.ok ? 'running again' : `current again but not answering yet (${back.seen})`}`,
  );
}

/** Upgrades this host to the release in `file`, proven by `proof` and signed by the trusted key. */
export async function upgradeFromFile(
  layout: InstallLayout,
  file: string,
  proof: ReleaseProof,
  c: UpgradeComponents,
): Promise<UpgradeResult> {
  const running = versionAt(layout.current);
  if (!running) throw new NotInstalledError(layout.prefix);
  const { manifest, unpackedBytes } = await verifyRelease(file, proof, layout.releaseKey);
  if (manifest.version === running) {
    throw new ReleaseRefusedError('ARCHIVE_INVALID', `${manifest.version} is already the running version`);
  }
  c.log(`verified ${manifest.version} (signed, sha256 matches, ${manifest.os}-${manifest.arch}); unpacking`);
  await unpackRelease(file, layout.releases, manifest, unpackedBytes);
  const result = await switchAndWatch(layout, manifest.version, c);
  pruneReleases(layout);
  return result;
}

/** Goes back to `previous` by hand, with the same health check. */
export async function rollback(layout: InstallLayout, c: UpgradeComponents): Promise<UpgradeResult> {
  if (!versionAt(layout.current)) throw new NotInstalledError(layout.prefix);
  const prev = versionAt(layout.previous);
  if (!prev) throw new NoPreviousReleaseError();
  return switchAndWatch(layout, prev, c);
}
