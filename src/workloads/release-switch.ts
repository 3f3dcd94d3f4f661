/**
 * Switching an app from one release to another, health gated: stop the old process, point
 * `current` at the new release, start it, wait for its health check, and on failure put the
 * previous release back exactly as it was. Deploys and rollbacks both end here. The database
 * records the new release as current only once it is healthy.
 */
import { unlink } from 'node:fs/promises';
import { parseStampedLine } from '../core/log-stamp.ts';
import type { Logger } from '../logging/index.ts';
import type { AppRepo } from './app-repo.ts';
import type { AppUser } from './app-users.ts';
import type { Backend, LaunchSpec, RunChange, RunState } from './backend.ts';
import { DEFAULT_HEALTH_TIMEOUT_MS, KEEP_RELEASE_ROWS, KEEP_RELEASES } from './constants.ts';
import type { DeployProgress } from './deploy-source.ts';
import type { EnvRepo } from './env-repo.ts';
import { DeployFailedError } from './errors.ts';
import type { AppEventKind } from './event-repo.ts';
import { type HealthOutcome, waitHealthy } from './health.ts';
import type { ReleaseRepo, ReleaseRow } from './release-repo.ts';
import { type AppPaths, removeReleases, switchCurrent } from './releases.ts';
import { parseHealth, type RunSpec } from './spec.ts';
import type { AppInfo, DeployResult } from './types.ts';

/** What a switch needs from the workload manager (its AppContext provides all of it). */
export interface ReleaseSwitchDeps {
  apps: AppRepo;
  releases: ReleaseRepo;
  env: EnvRepo;
  backend: Backend;
  logger: Logger;
  /** Health deadline when a release sets none. */
  healthTimeoutMs?: number;
  paths(app: string): AppPaths;
  launchSpec(app: string, rel: ReleaseRow, extraEnv?: Record<string, string>): LaunchSpec;
  record(app: string, kind: AppEventKind, release: string | null, detail?: string): void;
  emitChange(app: string, kind: AppEventKind, detail: string | null): void;
  /** The user the app runs as, if the agent switches users: it deletes the app's own files. */
  userOf(app: string): AppUser | undefined;
  /** The switch is over (the app is no longer `deploying`), called before its final events. */
  settled(app: string): void;
  info(app: string): AppInfo;
}

/** Options of one switch. */
export interface SwitchOptions {
  kind: 'deploy' | 'rollback';
  /** Env vars to apply with the new release (stored only if it is healthy). */
  env?: Record<string, string>;
  onProgress?: (p: DeployProgress) => void;
  /** When the whole operation started, for `tookMs`. */
  started: number;
}

/** Performs health-gated release switches. */
export class ReleaseSwitch {
  readonly #d: ReleaseSwitchDeps;

  constructor(deps: ReleaseSwitchDeps) {
    this.#d = deps;
  }

  /**
   * Stops the old release, starts `next`, waits for health; on failure puts `prev` back. The
   * database only records `next` as current once it is healthy.
   */
  async switchTo(
    app: string,
    next: ReleaseRow,
    prev: ReleaseRow | undefined,
    o: SwitchOptions,
  ): Promise<DeployResult> {
    const p = this.#d.paths(app);
    const wasRunning =
      this.#d.backend.state(app)?.status === 'running' || this.#d.backend.state(app)?.status === 'crashloop';
    const envOverride = o.env ?? {};
    this.#d.emitChange(app, o.kind, `release ${next.id}`);
    await switchCurrent(p, next.id);
    o.onProgress?.({ phase: 'start', release: next.id });
    let outcome: HealthOutcome;
    try {
      // The old release hands its port over as soon as it stops accepting; it drains meanwhile.
      const handoffPort = wasRunning ? (this.#d.apps.get(app)?.spec.port ?? undefined) : undefined;
      await this.#d.backend.launch(this.#d.launchSpec(app, next, envOverride), { handoffPort });
      outcome = await this.#awaitHealth(app, next.spec, o.onProgress);
    } catch (err) {
      // Could not even start (cwd gone, fork failed): handled like a release that exited.
      this.#d.logger.warn({ app, err: (err as Error).message }, 'cannot start release');
      outcome = 'exited';
    }
    if (outcome === 'healthy') {
      const state = this.#d.backend.state(app);
      this.#d.releases.activate(app, next.id);
      if (o.env && Object.keys(o.env).length) this.#d.env.set(app, o.env);
      this.#d.apps.update(app, {
        spec: next.spec,
        release: next.id,
        desired: 'running',
        status: state?.status ?? 'running',
        pid: state?.pid ?? null,
        pidStart: state?.pidStart ?? null,
        startedAt: state?.startedAt ?? null,
        restarts: 0,
      });
      // Pruning belongs to the operation: nothing may roll back to a release being deleted.
      if (o.kind === 'deploy') {
        await this.#prune(app).catch((err) => this.#d.logger.warn({ app, err }, 'cannot prune old releases'));
      }
      this.#d.settled(app);
      this.#d.record(app, o.kind, next.id, prev ? `from ${prev.id}` : 'first release');
      const info = this.#d.info(app);
      return {
        app,
        release: next.id,
        previous: prev?.id ?? null,
        status: info.status,
        pid: info.pid,
        healthy: true,
        tookMs: Date.now() - o.started,
      };
    }
    // Unhealthy: put the previous release back exactly as it was.
    const why = describeOutcome(outcome, next.spec, this.#d.healthTimeoutMs);
    const tail = (await this.#d.backend.tail(app, p.log, 3).catch(() => []))
      .map((l) => parseStampedLine(l).text)
      .filter((l) => !l.startsWith('[plexus]'))
      .pop();
    await this.#d.backend.halt(app, 2_000);
    if (o.kind === 'deploy') {
      this.#d.releases.setStatus(app, next.id, 'failed');
      await removeReleases(p, [next.id], this.#d.userOf(app));
    }
    this.#d.record(app, 'deploy-failed', next.id, why);
    o.onProgress?.({ phase: 'rollback', to: prev?.id ?? null });
    let back = 'there was no earlier release, so the app is stopped';
    if (prev) {
      await switchCurrent(p, prev.id);
      if (wasRunning) {
        await this.#d.backend.launch(this.#d.launchSpec(app, prev));
        const ok = (await this.#awaitHealth(app, prev.spec)) === 'healthy';
        back = `rolled back to release ${prev.id}${ok ? ', which is running' : ', which is not healthy either'}`;
      } else back = `release ${prev.id} is current again (stopped)`;
      this.#d.record(app, 'rollback', prev.id, `after ${next.id} failed`);
    } else {
      // Nothing to go back to: the app stays, failed and without a release, so its logs can be read.
      await this.#d.backend.forget(app);
      await unlink(p.current).catch(() => {});
      this.#d.apps.update(app, {
        status: 'failed',
        desired: 'stopped',
        release: null,
        pid: null,
        pidStart: null,
      });
    }
    this.#d.settled(app);
    this.#d.emitChange(app, 'deploy-failed', why);
    const hint = tail
      ? ` (last log line: ${redact(tail, { ...this.#d.env.reveal(app), ...o.env }).slice(0, 160)})`
      : '';
    throw new DeployFailedError(
      'HEALTH_CHECK_FAILED',
      `release ${next.id} ${why}; ${back}${hint}; see 'plexus logs ${app}'`,
    );
  }

  async #awaitHealth(
    app: string,
    spec: RunSpec,
    onProgress?: (p: DeployProgress) => void,
  ): Promise<HealthOutcome> {
    const health = spec.health ?? (spec.port ? `tcp:${spec.port}` : undefined);
    let exited = false;
    const onChange = (a: string, _s: RunState, why: RunChange) => {
      if (a === app && (why === 'crash' || why === 'exit' || why === 'failed' || why === 'stop'))
        exited = true;
    };
    this.#d.backend.on('change', onChange);
    try {
      if (!health) {
        // No check to run: the release must at least stay up for a moment.
        await new Promise((r) => setTimeout(r, 1_000));
        return exited ? 'exited' : 'healthy';
      }
      const timeoutMs = spec.healthTimeoutS
        ? spec.healthTimeoutS * 1000
        : (this.#d.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS);
      return await waitHealthy(parseHealth(health), {
        timeoutMs,
        stillRunning: () => !exited,
        onWait: (elapsedMs) => onProgress?.({ phase: 'health', elapsedMs, check: health }),
      });
    } finally {
      this.#d.backend.off('change', onChange);
    }
  }

  async #prune(app: string): Promise<void> {
    const p = this.#d.paths(app);
    const current = this.#d.apps.get(app)?.release;
    const live = this.#d.releases.list(app).filter((r) => r.status === 'ready' || r.status === 'active');
    const old = live.filter((r) => r.id !== current).slice(KEEP_RELEASES - 1);
    await removeReleases(
      p,
      old.map((r) => r.id),
      this.#d.userOf(app),
    );
    for (const r of old) this.#d.releases.setStatus(app, r.id, 'pruned');
    this.#d.releases.forgetOld(app, KEEP_RELEASE_ROWS);
  }
}

/** Masks env values in app output before it goes into an error message (the app may print them). */
function redact(line: string, env: Record<string, string>): string {
  let out = line;
  for (const v of Object.values(env)) if (v.length >= 4) out = out.split(v).join('***');
  return out;
}

function describeOutcome(
  outcome: HealthOutcome,
  spec: RunSpec,
  defaultMs = DEFAULT_HEALTH_TIMEOUT_MS,
): string {
  const check = spec.health ?? (spec.port ? `tcp:${spec.port}` : 'staying up');
  if (outcome === 'exited') return `exited during its health check (${check})`;
  if (outcome === 'aborted') return 'deploy was interrupted';
  const s = spec.healthTimeoutS ?? defaultMs / 1000;
  return `failed its health check (${check} not healthy within ${s} s)`;
}
