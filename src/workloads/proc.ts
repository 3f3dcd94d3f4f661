/**
 * Reading processes from /proc: the start time that tells a live app from a reused pid, and CPU
 * and memory figures. Linux only, like the agent; elsewhere the figures are null.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { signalGroup } from '../core/process-group.ts';

/** Fields of /proc/PID/stat we use. */
export interface ProcStat {
  /** Process state letter (R, S, Z, …). */
  state: string;
  /** Parent pid. */
  ppid: number;
  /** Process group id. */
  pgid: number;
  /** utime + stime in clock ticks. */
  cpuTicks: number;
  /** Start time after boot in clock ticks: with the pid, a process's unique identity. */
  startTime: string;
  /** Resident set size in pages. */
  rssPages: number;
}

/** Parses /proc/PID/stat; undefined if the process does not exist. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field N is f[N - 3].
  return {
    state: f[0],
    ppid: Number(f[1]),
    pgid: Number(f[2]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    startTime: f[19],
    rssPages: Number(f[21]),
  };
}

/** True if `pid` is alive (not a zombie) and started at `startTime`. */
export function isSameProcess(pid: number, startTime: string | null): boolean {
  const st = readProcStat(pid);
  return !!st && st.state !== 'Z' && st.state !== 'X' && (startTime === null || st.startTime === startTime);
}

/** Linux's USER_HZ is 100 on every mainstream architecture. */
const TICKS_PER_S = 100;
const PAGE_BYTES = 4096;

/** Computes CPU% between calls per pid, and resident memory. */
export class ProcSampler {
  readonly #last = new Map<number, { ticks: number; at: number }>();

  /** CPU% since the previous sample of this pid (null on the first), memory in MB. */
  sample(pid: number): { cpuPct: number | null; memMb: number | null } {
    const st = readProcStat(pid);
    if (!st) {
      this.#last.delete(pid);
      return { cpuPct: null, memMb: null };
    }
    const now = Date.now();
    const prev = this.#last.get(pid);
    this.#last.set(pid, { ticks: st.cpuTicks, at: now });
    const memMb = Math.round(((st.rssPages * PAGE_BYTES) / 1048576) * 10) / 10;
    if (!prev || now - prev.at < 50) {
      // First sight: the average over the process's life is a fair first figure.
      return { cpuPct: prev ? null : lifetimeCpu(st), memMb };
    }
    const pct = ((st.cpuTicks - prev.ticks) / TICKS_PER_S / ((now - prev.at) / 1000)) * 100;
    return { cpuPct: Math.round(pct * 10) / 10, memMb };
  }

  /** Forgets pids that are no longer watched. */
  retain(pids: Set<number>): void {
    for (const pid of this.#last.keys()) if (!pids.has(pid)) this.#last.delete(pid);
  }
}

function lifetimeCpu(st: ProcStat): number | null {
  try {
    const uptimeS = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
    const ageS = uptimeS - Number(st.startTime) / TICKS_PER_S;
    if (ageS <= 0) return null;
    return Math.round((st.cpuTicks / TICKS_PER_S / ageS) * 1000) / 10;
  } catch {
    return null;
  }
}

/** SIGTERM to the process group of `pid`, then SIGKILL after `graceMs`; resolves once it is gone. */
export async function killGroup(pid: number, graceMs: number): Promise<void> {
  const start = readProcStat(pid)?.startTime ?? null;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  const alive = () => isSameProcess(pid, start) || groupMembers(pid).length > 0;
  while (Date.now() < deadline && alive()) await new Promise((r) => setTimeout(r, 20));
  if (alive()) signalGroup(pid, 'SIGKILL');
}

/** The pids in /proc now (none where there is no /proc). */
function allPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((e) => e.charCodeAt(0) >= 48 && e.charCodeAt(0) <= 57)
      .map(Number);
  } catch {
    return [];
  }
}

/** Live (not zombie) processes whose process group is `pgid`. Scans /proc; used only when stopping. */
export function groupMembers(pgid: number): number[] {
  return allPids().filter((pid) => {
    const st = readProcStat(pid);
    return st && st.pgid === pgid && st.state !== 'Z' && st.state !== 'X';
  });
}

/**
 * Process-group leaders whose working directory is under `dir`, other than `keep` and the
 * agent's own children: releases a previous agent started and lost track of (it died while an
 * old release drained). Scans /proc; used once per app when the agent starts.
 */
export function strayGroupsIn(dir: string, keep: number | null): number[] {
  return allPids().filter((pid) => {
    if (pid === keep) return false;
    const st = readProcStat(pid);
    if (!st || st.pgid !== pid || st.ppid === process.pid || st.state === 'Z') return false;
    try {
      return readlinkSync(`/proc/${pid}/cwd`).startsWith(`${dir}/`);
    } catch {
      return false; // gone, or not ours to read
    }
  });
}
