/**
 * Taking an app back over when the agent starts: apps outlive the agent (an agent restart or
 * upgrade leaves them running), so on start each app's process is re-adopted by pid and process
 * start time, or restarted if it should run and is gone. Leftovers of a deploy the agent died in
 * are cleared, and a switch it died in the middle of is finished the way the database says.
 */
import { readdirSync } from 'node:fs';
import type { AppContext } from './app-context.ts';
import type { AppRow } from './app-repo.ts';
import { STOP_GRACE_MS } from './constants.ts';
import { isSameProcess, killGroup } from './proc.ts';
import { clearTmp, currentRelease, ensureAppDirs, removeReleases, switchCurrent } from './releases.ts';

/** Re-adopts (or restarts) one app recorded in the database. */
export async function recoverApp(ctx: AppContext, row: AppRow): Promise<void> {
  const p = ctx.paths(row.name);
  ensureAppDirs(p);
  await clearTmp(p); // leftovers of a deploy the agent died in
  // An app from before per-app users gets its own here (files and all): a restart by the
  // supervisor, or the start below when its process is gone, runs it as that user.
  await ctx.appUser(row);
  const known = new Set(ctx.releases.list(row.name).map((r) => r.id));
  for (const dir of readdirSync(p.releases))
    if (!known.has(dir)) await removeReleases(p, [dir], ctx.userOf(row.name));
  if (!row.release) {
    if (row.status === 'deploying') ctx.apps.update(row.name, { status: 'failed' });
    return;
  }
  const rel = ctx.releases.get(row.name, row.release);
  if (!rel) return;
  let pid = row.pid;
  if ((await currentRelease(p)) !== row.release) {
    // The agent died in the middle of a switch: the database is the truth. The process it
    // recorded last may be the unconfirmed new release: stop it so the port is free.
    if (pid && isSameProcess(pid, row.pidStart)) await killGroup(pid, ctx.init.stopGraceMs ?? STOP_GRACE_MS);
    await switchCurrent(p, row.release);
    pid = null;
  }
  const spec = ctx.launchSpec(row.name, rel);
  const how = await ctx.backend.adopt(row.name, {
    spec,
    pid,
    pidStart: pid ? row.pidStart : null,
    startedAt: row.startedAt,
    restarts: row.restarts,
    wanted: row.desired === 'running',
  });
  // What a previous agent left draining when it died goes now (its drain was cut short anyway).
  const stray = await ctx.backend.sweep(row.name, p.releases, ctx.init.stopGraceMs ?? STOP_GRACE_MS);
  if (stray) ctx.logger.info({ app: row.name, stray }, 'stopped old releases a previous agent left running');
  // A restart is recorded by the backend's own change event; an adoption is only logged.
  if (how === 'adopt') ctx.logger.info({ app: row.name, pid: row.pid }, 're-adopted app');
  // Its kernel redirect was rewritten from the database before (TrafficRouter.start). Without
  // it, a release on a private port is unreachable on its declared port until its next deploy.
  if (how !== 'stop' && rel.spec.port && row.livePort && !ctx.traffic.redirects)
    ctx.logger.error(
      { app: row.name, port: rel.spec.port, livePort: row.livePort },
      "app listens on a private port but the kernel redirect is off: 'plexus restart' it to serve its declared port",
    );
}
