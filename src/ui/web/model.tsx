/** What the page knows of the fleet (src/cli/ui/fleet.ts sends it) and small formatters. */
import type { FleetSnapshot, Me } from '../../cli/ui/fleet.ts';

/** An app as a node's telemetry record carries it. */
export interface AppFigure {
  name: string;
  status: string;
  pid: number | null;
  cpuPct: number | null;
  memMb: number | null;
  restarts: number;
  release: string | null;
}

/** A node's latest telemetry record (the fields the pages show). */
export interface Record_ {
  ts: number;
  version: string;
  uptimeS: number;
  cpu: { pct: number | null; cores: number };
  mem: { usedMb: number | null; totalMb: number | null };
  disk: { usedGb: number | null; totalGb: number | null };
  net: { rxBps: number | null; txBps: number | null };
  apps: AppFigure[];
  services: { name: string; port: number }[];
  nat?: { status: string };
}

/** A node as the entry agent sees it. */
export interface NodeRow {
  name: string;
  peerId: string;
  self: boolean;
  state: string;
  connection: string;
  rttMs: number | null;
  telemetry: Record_ | null;
}

/** A link between two nodes, and the key's grant: as `plexus ui` (or the page's own hub) sends them. */
export type { Edge, Me } from '../../cli/ui/fleet.ts';

/** One fleet snapshot, with the records typed for the pages. */
export interface Fleet extends Omit<FleetSnapshot, 'nodes'> {
  nodes: NodeRow[];
}

/** What the key may do, as the nodes will judge it (docs/commands.md): the page shows only that. */
export function can(me: Me | null, access: 'read' | 'write' | 'exec' | 'shell' | 'admin'): boolean {
  if (!me) return false;
  if (me.role === 'admin') return true;
  if (access === 'read') return me.role === 'viewer' || me.role === 'operator';
  if (access === 'shell') return me.shell;
  if (me.role !== 'operator') return false;
  return access === 'write' || (access === 'exec' && me.exec);
}

/** `12.3 %`, or a dash for an unknown figure. */
export function pct(v: number | null | undefined): string {
  return v == null ? '–' : `${v.toFixed(1)} %`;
}

/** `used / total unit`. */
export function usage(
  used: number | null | undefined,
  total: number | null | undefined,
  unit: string,
): string {
  if (used == null) return '–';
  return total == null ? `${used.toFixed(0)} ${unit}` : `${used.toFixed(0)} / ${total.toFixed(0)} ${unit}`;
}

/** `3 s ago`. */
export function ago(ts: number | null | undefined, now = Date.now()): string {
  if (!ts) return 'never';
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** Bytes per second, human-sized. */
export function rate(bps: number | null | undefined): string {
  if (bps == null) return '–';
  const units = ['B/s', 'KB/s', 'MB/s', 'GB/s'];
  let v = bps;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 && i ? 1 : 0)} ${units[i]}`;
}
