/**
 * Switching an app from one release to another, health gated. Deploys and rollbacks both end
 * here. For an app with a port (issue 18) the new release starts beside the old one on a fresh
 * private port; once healthy, the kernel redirect of the declared port (and the registered
 * switches) send new connections to it, and the old release drains in the background and stops.
 * A release that fails its health check is stopped and the old one, which never stopped serving,
 * is taken back. An app without a port, or any app where the kernel redirect is not available
 * (the fallback), is stopped first and then replaced. The database records the new release as
 * current only once it is healthy and routed.
 */
import { unlink } from 'node:fs/promises';
import { parseStampedLine } from '../core/log-stamp.ts';
import type { Logger } from '../logging/index.ts';
import type { AppRepo } from './app-repo.ts';
import type { AppUser } from './app-users.ts';
import type { Backend, LaunchSpec, RunChange, RunState, SetAside } from './backend.ts';
import {
  DEFAULT_HEALTH_TIMEOUT_MS,
  DRAIN_TIMEOUT_MS,
  KEEP_RELEASE_ROWS,
  KEEP_RELEASES,
  STOP_GRACE_MS,
} from './constants.ts';
import type { DeployProgress } from './deploy-source.ts';
import type { EnvRepo } from './env-repo.ts';
import { DeployFailedError } from './errors.ts';
import type { AppEventKind } from './event-repo.ts';
import { type HealthOutcome, waitHealthy } from './health.ts';
import { isSameProcess } from './proc.ts';
import type { ReleaseRepo, ReleaseRow } from './release-repo.ts';
import { type AppPaths, removeReleases, switchCurrent } from './releases.ts';
import { parseHealth, type RunSpec } from './spec.ts';
import type { TrafficRouter } from './traffic-router.ts';
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
  /** Where traffic goes: the kernel redirect and the registered switches. */
  traffic: TrafficRouter;
  /** Longest drain of an old release, and its SIGTERM-to-SIGKILL grace. */
  init: { drainTimeoutMs?: number; stopGraceMs?: number };
  paths(app: string): AppPaths;
  launchSpec(
    app: string,
    rel: ReleaseRow,
    extraEnv?: Record<string, string>,
    livePort?: number | null,
  ): LaunchSpec;
  /** A free private port for a new release (never a declared or reserved port). */
  privatePort(): Promise<number>;
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
  /** A restart switches an app with a port to a new process of its current release the same way. */
  kind: 'deploy' | 'rollback' | 'restart';
  /** Env vars to apply with the new release (stored only if it is healthy). */
  env?: Record<string, string>;
  onProgress?: (p: DeployProgress) => void;
  /** When the whole operation started, for `tookMs`. */
  started: number;
}

/** The process a switch replaces, when the app was running. */
interface Previous extends SetAside {
  /** Its private port behind the redirect; undefined when it holds the declared port itself. */
  port?: number;
  startedAt: number | null;
  restarts: number;
}

type Outcome = HealthOutcome | 'unrouted';

/** Performs health-gated release switches. */
export class ReleaseSwitch {
  readonly #d: ReleaseSwitchDeps;
  /** Old releases draining in the background, each with what stops its wait early. */
  readonly #draining = new Map<Promise<void>, AbortController>();

  constructor(deps: ReleaseSwitchDeps) {
    this.#d = deps;
  }

  /**
   * Starts `next` (beside the running release when it has a port), waits for health, routes the
   * app's traffic to it and retires the old process; on failure keeps or puts `prev` back. The
   * database only records `next` as current once it is healthy and routed.
   */
  async switchTo(
    app: string,
    next: ReleaseRow,
    prev: ReleaseRow | undefined,
    o: SwitchOptions,
  ): Promise<DeployResult> {
    const p = this.#d.paths(app);
    const row = this.#d.apps.get(app);
    const was = this.#d.backend.state(app);
    const wasRunning = was?.status === 'running' || was?.status === 'crashloop';
    const old: Previous | undefined =
      wasRunning && was?.pid
        ? {
            pid: was.pid,
            pidStart: was.pidStart,
            startedAt: was.startedAt,
            restarts: was.restarts,
            ...(row?.livePort ? { port: row.livePort, instance: String(row.livePort) } : {}),
          }
        : undefined;
    // Both releases serve a port: the new one starts beside the old, which keeps serving meanwhile.
    // Without the kernel redirect (the fallback) the new one needs the declared port: stop, start.
    const overlap =
      this.#d.traffic.redirects &&
      old !== undefined &&
      next.spec.port !== undefined &&
      row?.spec.port !== undefined;
    this.#d.emitChange(app, o.kind, `release ${next.id}`);
    await switchCurrent(p, next.id);
    o.onProgress?.({ phase: 'start', release: next.id });
    let port: number | undefined;
    let outcome: Outcome;
    let unrouted = '';
    try {
      if (next.spec.port !== undefined && this.#d.traffic.redirects) port = await this.#d.privatePort();
      // The fallback hands the declared port over as soon as the old release closes it.
      const handoffPort =
        !overlap && wasRunning && !row?.livePort ? (row?.spec.port ?? undefined) : undefined;
      await this.#d.backend.launch(this.#d.launchSpec(app, next, o.env ?? {}, port ?? null), {
        overlap,
        ...(handoffPort ? { handoffPort } : {}),
      });
      outcome = await this.#awaitHealth(app, next.spec, port, o.onProgress);
    } catch (err) {
      // Could not even start (cwd gone, fork failed): handled like a release that exited.
      this.#d.logger.warn({ app, err: (err as Error).message }, 'cannot start release');
      outcome = 'exited';
    }
    if (outcome === 'healthy' && port !== undefined) {
      try {
        // An app from before issue 18 listening on its declared port itself keeps it: the rule
        // takes its new connections away in the kernel, and it drains there like any old release.
        await this.#d.traffic.switchTo(app, next.spec.port!, port);
      } catch (err) {
        outcome = 'unrouted';
        unrouted = (err as Error).message;
      }
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
        livePort: port ?? null,
      });
      if (port === undefined) await this.#d.traffic.release(app);
      if (overlap && old) this.#drainThenRetire(app, old, old.port ?? row!.spec.port!);
      // Pruning belongs to the operation: nothing may roll back to a release being deleted.
      if (o.kind === 'deploy') {
        await this.#prune(app).catch((err) => this.#d.logger.warn({ app, err }, 'cannot prune old releases'));
      }
      this.#d.settled(app);
      const detail =
        o.kind === 'restart' ? 'by operator, without downtime' : prev ? `from ${prev.id}` : 'first release';
      this.#d.record(app, o.kind, next.id, detail);
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
    // Unhealthy or unrouted: stop it, and keep (or put back) the previous release.
    const why = describeOutcome(outcome, next.spec, this.#d.healthTimeoutMs, unrouted);
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
      if (overlap && old && isAlive(old))
        back = await this.#keep(app, prev, old, outcome === 'unrouted' ? row?.spec.port : undefined);
      else if (wasRunning) {
        await this.#d.backend.launch(this.#d.launchSpec(app, prev));
        const ok = (await this.#awaitHealth(app, prev.spec, row?.livePort ?? undefined)) === 'healthy';
        if (ok && prev.spec.port && row?.livePort)
          await this.#d.traffic.switchTo(app, prev.spec.port, row.livePort).catch(() => {});
        back = `rolled back to release ${prev.id}${ok ? ', which is running' : ', which is not healthy either'}`;
      } else back = `release ${prev.id} is current again (stopped)`;
      if (o.kind !== 'restart') this.#d.record(app, 'rollback', prev.id, `after ${next.id} failed`);
    } else {
      // Nothing to go back to: the app stays, failed and without a release, so its logs can be read.
      await this.#d.backend.forget(app);
      await this.#d.traffic.release(app);
      await unlink(p.current).catch(() => {});
      this.#d.apps.update(app, {
        status: 'failed',
        desired: 'stopped',
        release: null,
        pid: null,
        pidStart: null,
        livePort: null,
      });
    }
    this.#d.settled(app);
    this.#d.emitChange(app, 'deploy-failed', why);
    const hint = tail
      ? ` (last log line: ${redact(tail, { ...this.#d.env.reveal(app), ...o.env }).slice(0, 160)})`
      : '';
    throw new DeployFailedError(
      outcome === 'unrouted' ? 'TRAFFIC_SWITCH_FAILED' : 'HEALTH_CHECK_FAILED',
      `release ${next.id} ${why}; ${back}${hint}; see 'plexus logs ${app}'`,
    );
  }

  /**
   * Takes the old release back as the app's process after the new one failed: it never stopped,
   * and traffic only left it if a switch had moved: then every switch is pointed back
   * (`rerouteFrom`, the declared port), or the rule goes when it listens on that port itself.
   */
  async #keep(
    app: string,
    prev: ReleaseRow,
    old: Previous,
    rerouteFrom: number | undefined,
  ): Promise<string> {
    await this.#d.backend.adopt(app, {
      spec: this.#d.launchSpec(app, prev, {}, old.port ?? null),
      pid: old.pid,
      pidStart: old.pidStart,
      startedAt: old.startedAt,
      restarts: old.restarts,
      wanted: true,
    });
    if (rerouteFrom === undefined) return `release ${prev.id} kept serving throughout`;
    await (old.port === undefined
      ? this.#d.traffic.release(app)
      : this.#d.traffic.switchTo(app, rerouteFrom, old.port)
    ).catch((err: Error) =>
      this.#d.logger.error({ app, err: err.message }, 'cannot route traffic back to the old release'),
    );
    return `release ${prev.id} kept serving throughout`;
  }

  /** Stops `old` once nothing is in flight to its port (or after the drain timeout), in the background. */
  #drainThenRetire(app: string, old: Previous, port: number): void {
    const stop = new AbortController();
    const task = this.#d.traffic
      .drain(app, port, this.#d.init.drainTimeoutMs ?? DRAIN_TIMEOUT_MS, stop.signal)
      .then(() => this.#retire(app, old, this.#d.init.stopGraceMs ?? STOP_GRACE_MS))
      .catch((err: Error) => this.#d.logger.warn({ app, err: err.message }, 'cannot retire old release'))
      .finally(() => this.#draining.delete(task));
    this.#draining.set(task, stop);
  }

  async #retire(app: string, old: Previous, graceMs: number): Promise<void> {
    await this.#d.backend.retire(app, old, graceMs);
    this.#d.logger.info({ app, pid: old.pid }, 'old release stopped');
  }

  /**
   * The agent stops: old releases still draining get their SIGTERM now rather than after the
   * drain (a process left behind would hold its port and memory with nobody to stop it).
   */
  async close(): Promise<void> {
    for (const stop of this.#draining.values()) stop.abort();
    // Their SIGTERM goes out at once; the agent does not wait out their grace periods.
    await new Promise((r) => setImmediate(r));
  }

  async #awaitHealth(
    app: string,
    spec: RunSpec,
    livePort: number | undefined,
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
      // A check on the declared port asks the release on its private one (the redirect does not
      // send it there yet).
      const check = parseHealth(health);
      if (livePort !== undefined && check.port === spec.port) check.port = livePort;
      return await waitHealthy(check, {
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

/** True while the set-aside process is the same live process. */
function isAlive(old: SetAside): boolean {
  return isSameProcess(old.pid, old.pidStart);
}

/** Masks env values in app output before it goes into an error message (the app may print them). */
function redact(line: string, env: Record<string, string>): string {
  let out = line;
  for (const v of Object.values(env)) if (v.length >= 4) out = out.split(v).join('***');
  return out;
}

function describeOutcome(
  outcome: Outcome,
  spec: RunSpec,
  defaultMs = DEFAULT_HEALTH_TIMEOUT_MS,
  unrouted = '',
): string {
  if (outcome === 'unrouted') return `was healthy but could not be given traffic (${unrouted})`;
  const check = spec.health ?? (spec.port ? `tcp:${spec.port}` : 'staying up');
  if (outcome === 'exited') return `exited during its health check (${check})`;
  if (outcome === 'aborted') return 'deploy was interrupted';
  const s = spec.healthTimeoutS ?? defaultMs / 1000;
  return `failed its health check (${check} not healthy within ${s} s)`;
}
