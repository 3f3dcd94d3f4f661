/**
 * Deploys and rollbacks: choosing the release to switch to. A deploy stages the bundle, resolves
 * its run spec, checks the command and port, and commits it as a new release; a rollback picks an
 * earlier one. Both then hand over to the release switch (release-switch.ts), which is health
 * gated and puts the previous release back on failure. The caller holds the app's lock.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { AppContext } from './app-context.ts';
import { chownTree } from './app-files.ts';
import type { AppRow } from './app-repo.ts';
import { type DeployProgress, stageBundle } from './deploy-source.ts';
import { InvalidSpecError, UnknownReleaseError } from './errors.ts';
import { checkCommand } from './preflight.ts';
import type { ReleaseRow } from './release-repo.ts';
import type { ReleaseSwitch } from './release-switch.ts';
import { commitRelease, ensureAppDirs, newReleaseId, releaseDir, removeAppDir } from './releases.ts';
import { appNameSchema, resolveSpec } from './spec.ts';
import type { DeployRequest, DeployResult } from './types.ts';

/** Refuses a deploy to a name that cannot be an app's, before any lock or file is taken. */
export function checkAppName(app: string): void {
  const name = appNameSchema.safeParse(app);
  if (!name.success)
    throw new InvalidSpecError(
      'BAD_APP_NAME',
      `bad app name '${app.slice(0, 64)}': ${name.error.issues[0].message}`,
    );
}

/** Stages `req`'s bundle as a new release and switches to it; a failed first deploy leaves no app. */
export async function deployRelease(
  ctx: AppContext,
  releaseSwitch: ReleaseSwitch,
  req: DeployRequest,
): Promise<DeployResult> {
  const app = req.app;
  const started = Date.now();
  const prev = ctx.apps.get(app);
  const p = ctx.paths(app);
  ensureAppDirs(p);
  // Who the release runs as is settled before anything is fetched: a refusal changes nothing.
  const user = await ctx.deployUser(app, prev, req.user, req.allowRoot);
  let staged: Awaited<ReturnType<typeof stageBundle>> | undefined;
  try {
    staged = await stageBundle(p, req.source, {
      maxBundleBytes: ctx.init.maxBundleBytes,
      idleTimeoutMs: ctx.init.downloadIdleTimeoutMs,
      limits: ctx.init.extractLimits,
      signal: req.signal,
      onProgress: req.onProgress,
    });
    const prevRelease = prev?.release ? ctx.releases.get(app, prev.release) : undefined;
    const base = prevRelease?.spec ?? prev?.spec;
    // The previous bundle's env is not inherited: a key removed from plexus.yaml is gone.
    const spec = resolveSpec(req.flags, staged.manifest, base && { ...base, env: undefined });
    const env = { ...(prev !== undefined ? ctx.env.reveal(app) : {}), ...req.env };
    checkCommand(spec.cmd, staged.dir, env.PATH ?? spec.env.PATH ?? process.env.PATH);
    await ctx.checkPort(app, spec, prev);
    const id = newReleaseId();
    // Still in the agent's own tmp/, where the app cannot reach: its files become the app's.
    if (user) chownTree(staged.dir, user);
    await commitRelease(p, staged.dir, id);
    const row: ReleaseRow = {
      app,
      id,
      createdAt: Date.now(),
      source: staged.source,
      sha256: staged.transfer.sha256,
      bytes: staged.transfer.bytes,
      spec,
      status: 'ready',
    };
    if (!prev) {
      ctx.apps.insert({
        name: app,
        spec,
        desired: 'running',
        status: 'deploying',
        tenant: req.tenant,
        runAs: user?.name ?? null,
      });
      if (req.capabilities?.length) ctx.apps.update(app, { capabilities: req.capabilities });
      ctx.setUser(app, user);
    } else {
      ctx.adoptUser(prev, user);
      if (req.capabilities) ctx.apps.update(app, { capabilities: req.capabilities });
    }
    ctx.releases.insert(row);
    return await releaseSwitch.switchTo(app, row, prevRelease, {
      kind: 'deploy',
      env: req.env,
      onProgress: req.onProgress,
      started,
    });
  } catch (err) {
    if (!prev && !ctx.apps.get(app)) await removeAppDir(p, user).catch(() => {});
    // A first deploy that broke after its row was written: never leave it 'deploying'.
    else if (!prev && !ctx.apps.get(app)?.release)
      ctx.apps.update(app, { status: 'failed', desired: 'stopped' });
    throw err;
  } finally {
    if (staged) await rm(staged.staging, { recursive: true, force: true }).catch(() => {});
  }
}

/** Switches `row`'s app back to release `to`, or to the newest ready one older than the current release. */
export async function rollbackRelease(
  ctx: AppContext,
  releaseSwitch: ReleaseSwitch,
  row: AppRow,
  to: string | undefined,
  onProgress?: (p: DeployProgress) => void,
): Promise<DeployResult> {
  const app = row.name;
  const started = Date.now();
  const all = ctx.releases.list(app);
  const current = row.release ? all.find((r) => r.id === row.release) : undefined;
  let target: ReleaseRow | undefined;
  if (to) {
    target = all.find((r) => r.id === to);
    if (!target || target.status === 'pruned' || target.status === 'failed')
      throw new UnknownReleaseError(app, to);
  } else {
    target = all.find(
      (r) => r.id !== row.release && r.status === 'ready' && (!current || r.createdAt <= current.createdAt),
    );
    if (!target) {
      throw new InvalidSpecError(
        'NO_PREVIOUS_RELEASE',
        `app '${app}' has no earlier release to roll back to; see 'plexus releases ${app}'`,
      );
    }
  }
  if (target.id === row.release) {
    throw new InvalidSpecError(
      'ALREADY_CURRENT',
      `release ${target.id} is already the current release of '${app}'`,
    );
  }
  if (!existsSync(releaseDir(ctx.paths(app), target.id))) throw new UnknownReleaseError(app, target.id);
  return releaseSwitch.switchTo(app, target, current, { kind: 'rollback', onProgress, started });
}
