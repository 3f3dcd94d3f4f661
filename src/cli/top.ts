/**
 * `plexus top`: a live view of every node and its apps, refreshed from the local agent's copy of
 * the gossiped telemetry (no central server). `--json` prints one snapshot and exits; so does a
 * non-TTY stdout unless `--watch` is given.
 */
import type { Command } from 'commander';
import { agentOf, wantsJson } from './context.ts';
import { UsageError } from './errors.ts';
import { formatDuration, printJson } from './output.ts';
import {
  type AppFigures,
  appsCell,
  type ContainerFigures,
  certProblemLines,
  diskCell,
  edgeCell,
  mbCell,
  memCell,
  pctCell,
  type RecordFigures,
  rateCell,
} from './telemetry-format.ts';

interface NodeRow {
  name: string;
  self: boolean;
  state: string;
  connection: string;
  rttMs: number | null;
  telemetry: (RecordFigures & { ts?: number }) | null;
}

/** Registers `plexus top`. */
export function registerTop(program: Command): void {
  program
    .command('top')
    .description('live view of every node and its apps (cpu, memory, disk, network)')
    .option('-d, --delay <seconds>', 'seconds between refreshes', '2')
    .option('-n, --iterations <n>', 'stop after N refreshes (default: until Ctrl-C)')
    .option('--watch', 'keep refreshing even when stdout is not a terminal')
    .option('--json', 'print one snapshot as JSON and exit')
    .action(async (opts, cmd: Command) => {
      const delay = Number(opts.delay);
      if (!Number.isFinite(delay) || delay < 0.2 || delay > 3600)
        throw new UsageError('--delay must be 0.2..3600');
      const iterations = opts.iterations === undefined ? Number.POSITIVE_INFINITY : Number(opts.iterations);
      if (!(iterations >= 1)) throw new UsageError('--iterations must be a positive number');
      const agent = agentOf(cmd);
      const snapshot = async () => (await agent.call('telemetry.nodes')) as NodeRow[];
      if (wantsJson(cmd)) return printJson(await snapshot());
      const live = Boolean(process.stdout.isTTY) || Boolean(opts.watch);
      if (!live) {
        process.stdout.write(render(await snapshot(), Date.now()));
        return;
      }
      let stop = false;
      const onSig = () => {
        stop = true;
      };
      process.once('SIGINT', onSig);
      const tty = Boolean(process.stdout.isTTY);
      try {
        for (let i = 0; i < iterations && !stop; i++) {
          const text = render(await snapshot(), Date.now());
          // Home + clear-to-end redraws in place without the flicker of a full clear.
          process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
          if (i + 1 < iterations) await sleepUnless(delay * 1000, () => stop);
        }
      } finally {
        process.off('SIGINT', onSig);
      }
    });
}

async function sleepUnless(ms: number, stopped: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end && !stopped())
    await new Promise((r) => setTimeout(r, Math.min(100, end - Date.now())));
}

/** The whole screen as text: a node table, then each node's apps. */
export function render(nodes: NodeRow[], now: number): string {
  const counts = { online: 0, suspect: 0, down: 0 } as Record<string, number>;
  for (const n of nodes) counts[n.state] = (counts[n.state] ?? 0) + 1;
  const lines = [
    `plexus top — ${nodes.length} nodes: ${counts.online ?? 0} online, ${counts.suspect ?? 0} suspect, ${counts.down ?? 0} down   ${new Date(now).toISOString().slice(11, 19)}Z`,
    '',
  ];
  const rows = nodes.map((n) => {
    const t = n.telemetry ?? undefined;
    const age = t?.ts ? `${Math.max(0, Math.round((now - t.ts) / 1000))}s` : '-';
    return [
      n.self ? `${n.name}*` : n.name,
      n.state,
      n.self ? 'self' : n.connection,
      pctCell(t?.cpu?.pct),
      t?.cpu?.load?.[0] == null ? '-' : String(t.cpu.load[0]),
      memCell(t),
      diskCell(t),
      t?.net ? `${rateCell(t.net.rxBps)} ${rateCell(t.net.txBps)}` : '-',
      appsCell(t),
      edgeCell(t),
      t?.uptimeS == null ? '-' : formatDuration(t.uptimeS),
      age,
    ];
  });
  lines.push(
    ...table(
      ['node', 'state', 'path', 'cpu', 'load', 'mem', 'disk', 'net rx tx', 'apps', 'edge', 'up', 'age'],
      rows,
    ),
  );
  // Certificate problems are rare and need action: each on a line of its own under the nodes.
  const certs = certProblemLines(nodes);
  if (certs.length) lines.push('', 'certificate problems:', ...certs.map((l) => `  ${l}`));
  const apps: string[][] = [];
  for (const n of nodes) {
    for (const a of (n.telemetry?.apps ?? []) as AppFigures[]) {
      apps.push([
        n.name,
        a.name,
        a.status,
        a.pid == null ? '-' : String(a.pid),
        pctCell(a.cpuPct),
        mbCell(a.memMb),
        String(a.restarts),
        a.release ?? '-',
      ]);
    }
  }
  lines.push('');
  if (apps.length === 0) lines.push('no apps running on any node');
  else lines.push(...table(['node', 'app', 'status', 'pid', 'cpu', 'mem', 'restarts', 'release'], apps));
  lines.push(...containerLines(nodes));
  return `${lines.join('\n')}\n`;
}

/** The containers of nodes with a container engine (issue 18); nothing when none has one. */
function containerLines(nodes: NodeRow[]): string[] {
  const rows: string[][] = [];
  const omitted: string[] = [];
  for (const n of nodes) {
    for (const c of (n.telemetry?.containers ?? []) as ContainerFigures[])
      rows.push([n.name, c.name, c.id, c.image, c.state, c.health, pctCell(c.cpuPct), mbCell(c.memMb)]);
    if (n.telemetry?.containersOmitted) omitted.push(`${n.telemetry.containersOmitted} on ${n.name}`);
  }
  if (!rows.length && !omitted.length) return [];
  const out = ['', ...table(['node', 'container', 'id', 'image', 'state', 'health', 'cpu', 'mem'], rows)];
  if (omitted.length) out.push(`(more containers not in the records: ${omitted.join(', ')})`);
  return out;
}

function table(headers: string[], rows: string[][]): string[] {
  const all = [headers.map((h) => h.toUpperCase()), ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => r[i]?.length ?? 0)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  '));
}
