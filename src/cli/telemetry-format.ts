/**
 * Short cells for telemetry figures, shared by `plexus peers` and `plexus top`. Light on purpose
 * (no agent modules): records arrive as plain JSON from the agent.
 */

/** The figures of a record that the CLI prints (a subset of the gossiped record). */
export interface RecordFigures {
  cpu?: { pct: number | null; cores: number; load: (number | null)[] };
  mem?: { usedMb: number | null; totalMb: number | null };
  disk?: { usedGb: number | null; totalGb: number | null };
  net?: { rxBps: number | null; txBps: number | null };
  apps?: AppFigures[];
  /** Docker/Podman containers (issue 18), on nodes with an engine socket. */
  containers?: ContainerFigures[];
  containersOmitted?: number;
  /** The edge (issue 18), on nodes that run one. */
  edge?: EdgeFigures;
  uptimeS?: number;
  version?: string;
}

/** One app as printed. */
export interface AppFigures {
  name: string;
  status: string;
  pid: number | null;
  cpuPct: number | null;
  memMb: number | null;
  restarts: number;
  release: string | null;
}

/** One container as printed. */
export interface ContainerFigures {
  id: string;
  name: string;
  image: string;
  state: string;
  health: string;
  cpuPct: number | null;
  memMb: number | null;
}

/** A node's edge as printed: its domain count and the first few certificate problems. */
export interface EdgeFigures {
  domains: number;
  certProblems: { host: string; app: string; cert: 'error' | 'expiring'; error: string }[];
}

/** `-` (no edge), `3` (domains, certificates fine) or `3 1!` (one with a certificate problem). */
export function edgeCell(t: RecordFigures | undefined): string {
  const e = t?.edge;
  if (!e) return '-';
  return e.certProblems.length ? `${e.domains} ${e.certProblems.length}!` : String(e.domains);
}

/** One line per certificate problem the nodes report, e.g. `n1: app.test (shop) error: …`. */
export function certProblemLines(nodes: { name: string; telemetry?: RecordFigures | null }[]): string[] {
  return nodes.flatMap((n) =>
    (n.telemetry?.edge?.certProblems ?? []).map((p) =>
      printable(`${n.name}: ${p.host} (${p.app}) ${p.cert}: ${p.error}`),
    ),
  );
}

/** Text from another node, kept to one line that cannot move the cursor or recolour the screen. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, ' ').slice(0, 600);
}

/** `12%` or `-`. */
export function pctCell(pct: number | null | undefined): string {
  return pct == null ? '-' : `${Math.round(pct)}%`;
}

/** `1.2/23.5G` from MB figures. */
export function memCell(t: RecordFigures | undefined): string {
  const m = t?.mem;
  if (!m || m.usedMb == null || m.totalMb == null) return '-';
  return `${(m.usedMb / 1024).toFixed(1)}/${(m.totalMb / 1024).toFixed(1)}G`;
}

/** `23/252G` from GB figures. */
export function diskCell(t: RecordFigures | undefined): string {
  const d = t?.disk;
  if (!d || d.usedGb == null || d.totalGb == null) return '-';
  return `${Math.round(d.usedGb)}/${Math.round(d.totalGb)}G`;
}

/** Running/total apps, e.g. `2/3`. */
export function appsCell(t: RecordFigures | undefined): string {
  if (!t?.apps) return '-';
  return `${t.apps.filter((a) => a.status === 'running').length}/${t.apps.length}`;
}

/** `1.2M/s`-style rate. */
export function rateCell(bps: number | null | undefined): string {
  if (bps == null) return '-';
  const units = ['B', 'K', 'M', 'G'];
  let v = bps;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)}${units[i]}/s`;
}

/** Memory of an app in MB, e.g. `84M`. */
export function mbCell(mb: number | null | undefined): string {
  if (mb == null) return '-';
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)}G` : `${Math.round(mb)}M`;
}
