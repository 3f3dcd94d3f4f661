/**
 * The `systemd` backend (config `workloads.backend: systemd`): each app is a hardened unit
 * (systemd-unit.ts); systemd does the supervising and restarting, we read status from
 * `systemctl show` and logs from `journalctl`. Needs a running systemd and root.
 */
import { execFile, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { stampLine } from '../core/log-stamp.ts';
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
import { STOP_GRACE_MS } from './constants.ts';
import { BackendUnavailableError } from './errors.ts';
import { readProcStat } from './proc.ts';
import {
  envFilePath,
  isUnitOf,
  renderEnvFile,
  renderUnit,
  SYSTEMD_RUN_DIR,
  SYSTEMD_UNIT_DIR,
  unitName,
} from './systemd-unit.ts';

const execFileP = promisify(execFile);
/** journald stamps each line as it captures it; read its time with the message. */
const JOURNAL_FORMAT = ['-o', 'json', '--output-fields=MESSAGE'];

/**
 * One `journalctl -o json` entry as an app log line with its capture time in front (the form of
 * the process backend's files, core/log-stamp.ts); undefined for what is not an entry. journald
 * gives a message that is not UTF-8 as an array of bytes, and a very large one as null.
 */
export function journalLine(json: string): string | undefined {
  if (!json.trim()) return undefined;
  let e: { __REALTIME_TIMESTAMP?: unknown; MESSAGE?: unknown };
  try {
    e = JSON.parse(json) as typeof e;
  } catch {
    return undefined;
  }
  const us = Number(e.__REALTIME_TIMESTAMP);
  const m = e.MESSAGE;
  const text =
    typeof m === 'string' ? m : Array.isArray(m) ? Buffer.from(m as number[]).toString('utf8') : '';
  return Number.isFinite(us) && us > 0 ? stampLine(text, Math.floor(us / 1000)) : text;
}

/** Why systemd cannot be used here, or undefined when it can. */
export function systemdUnavailableReason(): string | undefined {
  if (!existsSync('/run/systemd/system'))
    return 'systemd is not running on this host (/run/systemd/system is missing)';
  if (process.getuid?.() !== 0) return 'the systemd backend needs root to write units';
  return undefined;
}

/** Options of the systemd backend. */
export interface SystemdBackendInit {
  unitDir?: string;
  runDir?: string;
  /** How often unit state is polled for changes. */
  pollMs?: number;
}

/** Builds the systemd backend; its `start()` throws BackendUnavailableError where systemd cannot run. */
export function createSystemdBackend(init: SystemdBackendInit, components: { logger: Logger }): Backend {
  return new SystemdBackend(init, components.logger);
}

class SystemdBackend extends EventEmitter<BackendEvents> implements Backend {
  readonly kind = 'systemd' as const;
  readonly #unitDir: string;
  readonly #runDir: string;
  readonly #logger: Logger;
  readonly #known = new Map<string, RunState>();
  /** The unit each app's supervised process runs in (its instance's, issue 18). */
  readonly #units = new Map<string, { unit: string; instance?: string }>();
  readonly #pollMs: number;
  #timer: NodeJS.Timeout | undefined;
  #version = 0;

  constructor(init: SystemdBackendInit, logger: Logger) {
    super();
    this.#unitDir = init.unitDir ?? SYSTEMD_UNIT_DIR;
    this.#runDir = init.runDir ?? SYSTEMD_RUN_DIR;
    this.#logger = logger;
    this.#pollMs = init.pollMs ?? 1000;
  }

  start(): void {
    const why = systemdUnavailableReason();
    if (why) throw new BackendUnavailableError(`${why}; set workloads.backend: process`);
    this.#timer ??= setInterval(() => void this.#poll(), this.#pollMs);
    this.#timer.unref();
  }

  async #systemctl(...args: string[]): Promise<string> {
    try {
      return (await execFileP('systemctl', args, { timeout: 30_000 })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new BackendUnavailableError(
        `systemctl ${args[0]} failed: ${(e.stderr || e.message).trim().split('\n')[0]}`,
      );
    }
  }

  async launch(spec: LaunchSpec, opts: LaunchOptions = {}): Promise<RunState> {
    if (!this.#version) {
      const out = (await execFileP('systemctl', ['--version'])).stdout;
      this.#version = Number(/systemd (\d+)/.exec(out)?.[1] ?? 0);
    }
    const unit = unitName(spec.app, spec.instance);
    const prev = this.#units.get(spec.app);
    // Not overlapping: the process it replaces stops first (a unit of another instance included).
    if (prev && prev.unit !== unit && !opts.overlap) await this.#remove(spec.app, prev.instance);
    await mkdir(this.#runDir, { recursive: true, mode: 0o700 });
    const envFile = envFilePath(spec.app, this.#runDir, spec.instance);
    await writeFile(envFile, renderEnvFile(spec.env), { mode: 0o600 });
    await chmod(envFile, 0o600);
    await writeFile(
      `${this.#unitDir}/${unit}`,
      renderUnit(spec, { envFile, systemdVersion: this.#version, stopGraceS: STOP_GRACE_MS / 1000 }),
    );
    await this.#systemctl('daemon-reload');
    await this.#systemctl('reset-failed', unit).catch(() => '');
    await this.#systemctl('restart', unit);
    // The unit and its state change together: a poll in between would see another unit's pid
    // and report the app's process as gone.
    const state = await this.#read(spec.app, unit);
    this.#units.set(spec.app, { unit, instance: spec.instance });
    this.#known.set(spec.app, state);
    this.emit('change', spec.app, state, 'start', undefined);
    return state;
  }

  async halt(app: string): Promise<void> {
    const unit = this.#unit(app);
    await this.#systemctl('stop', unit).catch(() => '');
    // A unit that had to be SIGKILLed after its stop timeout ends "failed": it was asked to stop.
    await this.#systemctl('reset-failed', unit).catch(() => '');
    const state = await this.#read(app);
    this.#known.set(app, state);
    this.emit('change', app, state, 'stop', undefined);
  }

  async retire(app: string, old: SetAside): Promise<void> {
    // The unit's own TimeoutStopSec is the grace; systemd SIGKILLs after it.
    if (unitName(app, old.instance) !== this.#unit(app)) await this.#remove(app, old.instance);
  }

  /** Stops an instance's unit and deletes its unit and env files. */
  async #remove(app: string, instance: string | undefined): Promise<void> {
    const unit = unitName(app, instance);
    await this.#systemctl('stop', unit).catch(() => '');
    await this.#systemctl('reset-failed', unit).catch(() => '');
    await rm(`${this.#unitDir}/${unit}`, { force: true });
    await rm(envFilePath(app, this.#runDir, instance), { force: true });
    await this.#systemctl('daemon-reload').catch(() => '');
  }

  async sweep(app: string): Promise<number> {
    const files = (await readdir(this.#unitDir).catch(() => [] as string[])).filter(
      (f) => isUnitOf(app, f) && f !== this.#unit(app),
    );
    for (const f of files) await this.#remove(app, /\.(\d+)\.service$/.exec(f)?.[1]);
    return files.length;
  }

  async adopt(app: string, info: AdoptInfo): Promise<RunChange> {
    const unit = unitName(app, info.spec.instance);
    const prev = this.#units.get(app);
    // Taking an old release back after a failed deploy: the failed instance's unit goes.
    if (prev && prev.unit !== unit) await this.#remove(app, prev.instance);
    const state = await this.#read(app, unit);
    this.#units.set(app, { unit, instance: info.spec.instance });
    this.#known.set(app, state);
    if (state.status === 'running') return 'adopt';
    if (!info.wanted) return 'stop';
    await this.launch(info.spec);
    return 'restart';
  }

  state(app: string): RunState | undefined {
    return this.#known.get(app);
  }

  async forget(app: string): Promise<void> {
    // Every instance's unit: a release still draining goes with the app.
    const files = (await readdir(this.#unitDir).catch(() => [] as string[])).filter((f) => isUnitOf(app, f));
    for (const unit of new Set([...files, this.#unit(app)])) {
      await this.#systemctl('disable', '--now', unit).catch(() => '');
      await rm(`${this.#unitDir}/${unit}`, { force: true });
      const instance = /\.(\d+)\.service$/.exec(unit)?.[1];
      await rm(envFilePath(app, this.#runDir, instance), { force: true });
    }
    await this.#systemctl('daemon-reload').catch(() => '');
    this.#known.delete(app);
    this.#units.delete(app);
  }

  /** The unit of `app`'s supervised process. */
  #unit(app: string): string {
    return this.#units.get(app)?.unit ?? unitName(app);
  }

  async tail(app: string, _logFile: string, n: number): Promise<string[]> {
    const { stdout } = await execFileP(
      'journalctl',
      [...journalUnits(app), '-n', String(n), ...JOURNAL_FORMAT, '--no-pager'],
      {
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    return stdout.split('\n').flatMap((l) => journalLine(l) ?? []);
  }

  async follow(
    app: string,
    _logFile: string,
    onLines: (lines: string[]) => Promise<void>,
    signal: AbortSignal,
  ) {
    const child = spawn('journalctl', [...journalUnits(app), '-f', '-n', '0', ...JOURNAL_FORMAT], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    signal.addEventListener('abort', () => child.kill(), { once: true });
    let partial = '';
    for await (const chunk of child.stdout) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      const stamped = lines.flatMap((l) => journalLine(l) ?? []);
      if (stamped.length) await onLines(stamped);
    }
  }

  /** Reads a unit's state with `systemctl show`. */
  async #read(app: string, unit = this.#unit(app)): Promise<RunState> {
    const out = await this.#systemctl(
      'show',
      unit,
      '-p',
      'MainPID,ActiveState,SubState,NRestarts,ExecMainStartTimestamp,Result',
    );
    return parseShow(out);
  }

  async #poll(): Promise<void> {
    for (const [app, prev] of this.#known) {
      try {
        const unit = this.#unit(app);
        const next = await this.#read(app, unit);
        // A launch moved the app to another unit meanwhile: this reading is stale.
        if (this.#unit(app) !== unit || this.#known.get(app) !== prev) continue;
        if (next.status !== prev.status || next.pid !== prev.pid || next.restarts !== prev.restarts) {
          this.#known.set(app, next);
          // systemd restarts a crashed app by itself; polling sees only that it did, as a crash.
          const why: RunChange =
            next.status === 'failed' ? 'failed' : next.restarts > prev.restarts ? 'crash' : 'exit';
          const detail = why === 'crash' ? `restarted by systemd (${next.restarts})` : undefined;
          this.emit('change', app, next, why, detail);
        }
      } catch (err) {
        this.#logger.debug({ app, err: (err as Error).message }, 'systemctl show failed');
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** journalctl's unit filters for every process of `app`: its plain unit and its instances'. */
function journalUnits(app: string): string[] {
  return ['-u', unitName(app), '-u', `plexus-app-${app}.[0-9]*.service`];
}

/** Parses `systemctl show -p …` output into a RunState. Exported for tests. */
export function parseShow(out: string): RunState {
  const kv = Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const pid = Number(kv.MainPID ?? 0) || null;
  const active = kv.ActiveState ?? 'inactive';
  const status: RunState['status'] =
    active === 'active' || active === 'activating' || active === 'reloading'
      ? kv.SubState === 'auto-restart'
        ? 'crashloop'
        : 'running'
      : active === 'failed'
        ? 'failed'
        : 'stopped';
  const started = Date.parse(kv.ExecMainStartTimestamp ?? '');
  return {
    status,
    pid,
    pidStart: pid ? (readProcStat(pid)?.startTime ?? null) : null,
    startedAt: Number.isFinite(started) ? started : null,
    restarts: Number(kv.NRestarts ?? 0) || 0,
  };
}
