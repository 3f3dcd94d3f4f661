/**
 * The embedded `process` backend: a small supervisor. Each app runs as `/bin/sh -c "exec CMD"`,
 * detached into its own session and process group, with stdout and stderr going straight to its
 * log file, so it outlives the agent (even `kill -9`). Exits are seen at once for our own
 * children and by polling for adopted ones; restarts follow the policy with exponential backoff
 * and a crash-loop limit (issue 3).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, writeSync } from 'node:fs';
import { signalGroup } from '../core/process-group.ts';
import type { Logger } from '../logging/index.ts';
import type {
  AdoptInfo,
  Backend,
  BackendEvents,
  LaunchOptions,
  LaunchSpec,
  RunChange,
  RunState,
  SetAside,
} from './backend.ts';
import {
  ADOPTED_POLL_MS,
  APP_LOG_KEEP,
  APP_LOG_MAX_BYTES,
  CRASHLOOP_AFTER,
  CRASHLOOP_LIMIT,
  RESTART_BACKOFF_MAX_MS,
  RESTART_BACKOFF_MIN_MS,
  RESTART_RESET_AFTER_MS,
  STOP_GRACE_MS,
} from './constants.ts';
import { spawnCommand } from './launch-spec.ts';
import { followFile, openLogFd, rotateIfLarge, tailLines } from './log-files.ts';
import { appendMarker, findLogStamper, LOG_STAMPER_PATH, marker, startLogStamper } from './log-stamper.ts';
import { untilClosed } from './private-port.ts';
import { groupMembers, isSameProcess, killGroup, readProcStat, strayGroupsIn } from './proc.ts';

/** Tunables of the supervisor; defaults in constants.ts. */
export interface ProcessBackendInit {
  backoffMinMs?: number;
  backoffMaxMs?: number;
  resetAfterMs?: number;
  crashloopAfter?: number;
  crashloopLimit?: number;
  stopGraceMs?: number;
  adoptedPollMs?: number;
  /** The line stamper (log-stamper.ts); found beside the installation when not given, null for none. */
  logStamper?: string | null;
}

interface Supervised {
  spec: LaunchSpec;
  state: RunState;
  /** Consecutive crashes without a RESET_AFTER stretch of uptime. */
  crashes: number;
  wanted: boolean;
  child?: ChildProcess;
  poll?: NodeJS.Timeout;
  backoff?: NodeJS.Timeout;
  /** Resolves when the current process is gone. */
  exited?: Promise<void>;
  markExited?: () => void;
}

/** Builds the process backend. */
export function createProcessBackend(init: ProcessBackendInit, components: { logger: Logger }): Backend {
  return new ProcessBackend(init, components.logger);
}

class ProcessBackend extends EventEmitter<BackendEvents> implements Backend {
  readonly kind = 'process' as const;
  readonly #apps = new Map<string, Supervised>();
  readonly #logger: Logger;
  readonly #o: Required<Omit<ProcessBackendInit, 'logStamper'>>;
  readonly #stamper: string | undefined;
  #closed = false;

  constructor(init: ProcessBackendInit, logger: Logger) {
    super();
    this.#logger = logger;
    this.#stamper = init.logStamper === undefined ? findLogStamper() : (init.logStamper ?? undefined);
    if (!this.#stamper) {
      // Still usable: the app's lines go straight to its file, without their times.
      logger.warn(
        { path: LOG_STAMPER_PATH },
        'no log stamper (run scripts/bootstrap): app log lines carry no time',
      );
    }
    this.#o = {
      backoffMinMs: init.backoffMinMs ?? RESTART_BACKOFF_MIN_MS,
      backoffMaxMs: init.backoffMaxMs ?? RESTART_BACKOFF_MAX_MS,
      resetAfterMs: init.resetAfterMs ?? RESTART_RESET_AFTER_MS,
      crashloopAfter: init.crashloopAfter ?? CRASHLOOP_AFTER,
      crashloopLimit: init.crashloopLimit ?? CRASHLOOP_LIMIT,
      stopGraceMs: init.stopGraceMs ?? STOP_GRACE_MS,
      adoptedPollMs: init.adoptedPollMs ?? ADOPTED_POLL_MS,
    };
  }

  start(): void {
    // Nothing to watch yet: each app's timers start with its process (launch or adopt).
  }

  async launch(spec: LaunchSpec, opts: LaunchOptions = {}): Promise<RunState> {
    const prev = this.#apps.get(spec.app);
    if (prev && opts.overlap) this.#setAside(prev);
    else if (prev && opts.handoffPort !== undefined) await this.#handOff(prev, opts.handoffPort);
    else if (prev) await this.halt(spec.app);
    const sup: Supervised = {
      spec,
      crashes: 0,
      wanted: true,
      state: { status: 'running', pid: null, pidStart: null, startedAt: null, restarts: 0 },
    };
    this.#apps.set(spec.app, sup);
    this.#spawn(sup, 'start');
    return { ...sup.state };
  }

  #spawn(sup: Supervised, why: RunChange, detail?: string): void {
    const { spec } = sup;
    const fd = openLogFd(spec.logFile);
    let child: ChildProcess;
    let stamped: ReturnType<typeof startLogStamper> | undefined;
    try {
      writeSync(fd, marker(`starting release ${spec.release}`));
      const [file, args, ids] = spawnCommand(spec);
      if (this.#stamper) stamped = startLogStamper(this.#stamper, fd, spec.user);
      const out = stamped?.stamper.stdin ?? fd;
      child = spawn(file, args, {
        cwd: spec.cwd,
        env: spec.env,
        detached: true,
        stdio: ['ignore', out, out],
        ...ids,
      });
    } finally {
      stamped?.release();
      closeSync(fd);
    }
    child.unref();
    sup.child = child;
    let resolveExit!: () => void;
    sup.exited = new Promise((r) => {
      resolveExit = r;
    });
    sup.markExited = resolveExit;
    const pid = child.pid ?? null;
    sup.state = {
      ...sup.state,
      status: sup.crashes >= this.#o.crashloopAfter ? 'crashloop' : 'running',
      pid,
      pidStart: pid ? (readProcStat(pid)?.startTime ?? null) : null,
      startedAt: Date.now(),
    };
    child.once('error', (err) => {
      // spawn itself failed (cwd gone, /bin/sh missing): no exit event follows in some cases.
      this.#logger.warn({ app: spec.app, err: err.message }, 'cannot start app process');
      if (sup.child === child) this.#onExit(sup, child, 127, null);
    });
    child.once('exit', (code, signal) => this.#onExit(sup, child, code, signal));
    this.emit('change', spec.app, { ...sup.state }, why, detail);
  }

  #onExit(
    sup: Supervised,
    child: ChildProcess | undefined,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    if (child && sup.child !== child) return; // a stale child of an earlier launch
    if (this.#closed) return; // the agent is stopping; the app keeps running without us
    sup.child = undefined;
    if (sup.poll) clearInterval(sup.poll);
    sup.poll = undefined;
    sup.markExited?.();
    const app = sup.spec.app;
    const detail = signal ? `killed by ${signal}` : code === null ? 'exited' : `exit code ${code}`;
    // Say so in the app's own log, where an operator reading `plexus logs` looks first.
    appendMarker(sup.spec.logFile, `process ${sup.state.pid ?? '?'} ${detail}`);
    const upMs = sup.state.startedAt ? Date.now() - sup.state.startedAt : 0;
    // Children the app left behind (its shell died, they did not) would hold its port and
    // outlive every restart: the group goes with its leader.
    const leader = sup.state.pid;
    if (leader && sup.wanted && groupMembers(leader).length > 0) signalGroup(leader, 'SIGKILL');
    sup.state = { ...sup.state, pid: null, pidStart: null };
    if (!sup.wanted || this.#closed) {
      sup.state.status = 'stopped';
      this.emit('change', app, { ...sup.state }, 'stop', detail);
      return;
    }
    const policy = sup.spec.restart;
    const failed = signal !== null || code !== 0;
    if (policy === 'never' || (policy === 'on-failure' && !failed)) {
      sup.state.status = failed ? 'failed' : 'stopped';
      sup.wanted = false;
      this.emit('change', app, { ...sup.state }, 'exit', detail);
      return;
    }
    if (upMs >= this.#o.resetAfterMs) sup.crashes = 0;
    sup.crashes++;
    if (sup.crashes >= this.#o.crashloopLimit) {
      sup.state.status = 'failed';
      sup.wanted = false;
      this.emit(
        'change',
        app,
        { ...sup.state },
        'failed',
        `${detail}; ${sup.crashes} crashes in a row, giving up`,
      );
      return;
    }
    const delay = Math.min(this.#o.backoffMinMs * 2 ** (sup.crashes - 1), this.#o.backoffMaxMs);
    sup.state.status = sup.crashes >= this.#o.crashloopAfter ? 'crashloop' : 'running';
    this.emit('change', app, { ...sup.state }, 'crash', `${detail}; restarting in ${delay} ms`);
    sup.backoff = setTimeout(() => {
      sup.backoff = undefined;
      if (!sup.wanted || this.#closed || this.#apps.get(app) !== sup) return;
      sup.state.restarts++;
      try {
        this.#spawn(sup, 'restart', `restart ${sup.state.restarts}`);
      } catch (err) {
        this.#logger.warn({ app, err: (err as Error).message }, 'restart failed');
        this.#onExit(sup, undefined, 127, null);
      }
    }, delay);
  }

  /**
   * Ends the supervision of `prev` without signalling it: an overlapping launch leaves it serving
   * until the caller retires it (or adopts it back). Its exit is no longer the app's business.
   */
  #setAside(prev: Supervised): void {
    prev.wanted = false;
    if (prev.backoff) clearTimeout(prev.backoff);
    if (prev.poll) clearInterval(prev.poll);
    prev.backoff = undefined;
    prev.poll = undefined;
    prev.child = undefined;
  }

  /**
   * The fallback's stop-then-start (no kernel redirect): SIGTERM to `prev`, and the new process
   * starts as soon as `port` stops accepting (the old one closed its listener), while the old one
   * finishes its requests in the background (SIGKILL after the grace period).
   */
  async #handOff(prev: Supervised, port: number): Promise<void> {
    const { pid, pidStart } = prev.state;
    if (!pid || !isSameProcess(pid, pidStart)) return this.halt(prev.spec.app);
    this.#setAside(prev);
    let gone = false;
    void this.retire(prev.spec.app, { pid, pidStart }).finally(() => {
      gone = true;
    });
    await untilClosed(port, () => gone, this.#o.stopGraceMs);
  }

  async retire(_app: string, old: SetAside, graceMs = this.#o.stopGraceMs): Promise<void> {
    if (isSameProcess(old.pid, old.pidStart)) await killGroup(old.pid, graceMs);
  }

  async sweep(app: string, releasesDir: string, graceMs = this.#o.stopGraceMs): Promise<number> {
    const stray = strayGroupsIn(releasesDir, this.#apps.get(app)?.state.pid ?? null);
    await Promise.all(stray.map((pid) => killGroup(pid, graceMs)));
    return stray.length;
  }

  async halt(app: string, graceMs = this.#o.stopGraceMs): Promise<void> {
    const sup = this.#apps.get(app);
    if (!sup) return;
    sup.wanted = false;
    if (sup.backoff) clearTimeout(sup.backoff);
    sup.backoff = undefined;
    const { pid, pidStart } = sup.state;
    if (pid && (isSameProcess(pid, pidStart) || groupMembers(pid).length > 0)) {
      signalGroup(pid, 'SIGTERM');
      if (!(await this.#waitGone(sup, pid, pidStart, graceMs))) {
        signalGroup(pid, 'SIGKILL');
        await this.#waitGone(sup, pid, pidStart, 5_000);
      }
    }
    // An adopted process has no exit event: settle its state here.
    if (sup.state.status !== 'stopped' || sup.state.pid !== null) {
      if (sup.poll) clearInterval(sup.poll);
      sup.poll = undefined;
      sup.child = undefined;
      sup.state = { ...sup.state, status: 'stopped', pid: null, pidStart: null };
      this.emit('change', app, { ...sup.state }, 'stop', undefined);
    }
  }

  /**
   * Waits until the process and every other member of its group are gone: a shell running a
   * compound command may exit on SIGTERM while its children ignore it. Our own child is awaited
   * by its exit event; the group (a /proc scan) is checked once it is gone.
   */
  async #waitGone(sup: Supervised, pid: number, pidStart: string | null, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    const sleep = (t: number) =>
      new Promise<void>((r) => setTimeout(r, Math.max(0, Math.min(t, deadline - Date.now()))));
    if (sup.child && sup.exited) await Promise.race([sup.exited, sleep(ms)]);
    while (isSameProcess(pid, pidStart)) {
      if (Date.now() >= deadline) return false;
      await sleep(10);
    }
    for (;;) {
      if (groupMembers(pid).length === 0) return true;
      if (Date.now() >= deadline) return false;
      await sleep(25);
    }
  }

  async adopt(app: string, info: AdoptInfo): Promise<RunChange> {
    const sup: Supervised = {
      spec: info.spec,
      crashes: 0,
      wanted: info.wanted,
      state: {
        status: 'stopped',
        pid: null,
        pidStart: null,
        startedAt: info.startedAt,
        restarts: info.restarts,
      },
    };
    this.#apps.set(app, sup);
    if (info.pid && info.pidStart && isSameProcess(info.pid, info.pidStart)) {
      // Ours, from before the agent restarted: watch it by polling, since it is not our child.
      sup.state = { ...sup.state, status: 'running', pid: info.pid, pidStart: info.pidStart };
      if (!info.wanted) {
        // It should not run (stopped while the agent was down?): finish the stop.
        await this.halt(app);
        return 'stop';
      }
      const pid = info.pid;
      sup.poll = setInterval(() => {
        if (!isSameProcess(pid, info.pidStart)) this.#onExit(sup, undefined, null, null);
      }, this.#o.adoptedPollMs);
      sup.poll.unref();
      this.emit('change', app, { ...sup.state }, 'adopt', `pid ${pid}`);
      return 'adopt';
    }
    if (!info.wanted) return 'stop';
    // Gone (host reboot, killed while we were down): start it again.
    this.#spawn(sup, 'restart', 'process was gone when the agent started');
    return 'restart';
  }

  state(app: string): RunState | undefined {
    const s = this.#apps.get(app)?.state;
    return s && { ...s };
  }

  async forget(app: string): Promise<void> {
    await this.halt(app);
    this.#apps.delete(app);
  }

  async tail(_app: string, logFile: string, n: number): Promise<string[]> {
    return tailLines(logFile, n);
  }

  follow(_app: string, logFile: string, onLines: (lines: string[]) => Promise<void>, signal: AbortSignal) {
    return followFile(logFile, onLines, signal);
  }

  async tick(): Promise<void> {
    for (const sup of this.#apps.values())
      await rotateIfLarge(sup.spec.logFile, APP_LOG_MAX_BYTES, APP_LOG_KEEP);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const sup of this.#apps.values()) {
      if (sup.backoff) clearTimeout(sup.backoff);
      if (sup.poll) clearInterval(sup.poll);
    }
  }
}
