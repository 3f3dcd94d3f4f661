/** `plexus status`, `peers`, `ping`, `revoke`: the mesh as the local agent sees it. */
import type { Command } from 'commander';
import { agentOf, wantsJson } from './context.ts';
import { CliError, UsageError } from './errors.ts';
import { ago, formatDuration, printJson, printTable } from './output.ts';
import { refuseRemoteRotation, rotateAndReport } from './swarm-key.ts';
import {
  appsCell,
  certProblemLines,
  diskCell,
  edgeCell,
  memCell,
  pctCell,
  type RecordFigures,
} from './telemetry-format.ts';

interface Status {
  name: string;
  peerId: string;
  networkId: string;
  version: string;
  uptimeS: number;
  addrs: string[];
  door?: string[];
  admin: boolean;
  peers: { total: number; online: number; suspect: number; down: number };
  agent?: { pid: number; rssMb: number; heapUsedMb: number };
  reachability?: { status: string; reason: string; relays: string[]; reservationsWanted: number };
}

/** `reach    behind NAT (3 of 3 dial-backs failed …); relays …4f2a, …91bc`. */
function reachLine(r: NonNullable<Status['reachability']>): string {
  const label = { public: 'public', 'behind-nat': 'behind NAT', unknown: 'unknown' }[r.status] ?? r.status;
  const relays =
    r.reservationsWanted > 0
      ? `; relays ${r.relays.map((id) => `…${id.slice(-8)}`).join(', ') || 'none yet'} (${r.relays.length}/${r.reservationsWanted})`
      : '';
  return `reach    ${label} (${r.reason})${relays}\n`;
}

interface TunnelStatus {
  services: { name: string; port: number; source: string }[];
  socks: string | null;
  forwards: number;
  tunnels: {
    active: number;
    inbound: number;
    outbound: number;
    dataPort?: number | null;
    splicePort?: number | null;
    /** What this node carries as a relay's splices (docs/tunnels.md, spliced connections). */
    splices?: { active: number; waiting: number; total: number; bytes: number };
  };
}

/** The relay's splices, when it carries or has carried any. */
function splicesLine(s: TunnelStatus['tunnels']['splices']): string {
  if (!s || s.total + s.waiting === 0) return '';
  const mb = (s.bytes / 1e6).toFixed(1);
  return `splices  ${s.active} carried for other members (${s.waiting} waiting), ${s.total} since start, ${mb} MB\n`;
}

interface Peer {
  name: string;
  peerId: string;
  state: string;
  addrs: string[];
  connection: string;
  rttMs: number | null;
  lastSeen: number | null;
  telemetry?: Record<string, unknown>;
}

/** One reply of `ping --until-direct`, and its outcome. */
interface PathPing {
  seq: number;
  ms: number | null;
  path: string;
  via: string;
}

/** `plexus ping NODE --until-direct`: a line per ping with its path; exit 1 if never direct. */
async function pingUntilDirect(cmd: Command, node: string, timeout: string): Promise<void> {
  const timeoutS = Number(timeout);
  if (!Number.isInteger(timeoutS) || timeoutS < 1 || timeoutS > 600)
    throw new UsageError('--timeout must be 1..600 seconds');
  const json = wantsJson(cmd);
  const viaText = (p: { path: string; via: string }) =>
    p.path === 'relayed' ? `relay ${p.via}` : `${p.via}${p.path === 'punched' ? ' (punched)' : ''}`;
  const result = (await agentOf(cmd).call(
    'mesh.ping',
    { node, untilDirect: true, timeoutS },
    {
      onData: (d) => {
        const p = d as PathPing;
        if (json) return;
        process.stdout.write(
          p.ms === null
            ? `no answer from ${node} (seq=${p.seq}); path ${viaText(p)}\n`
            : `pong from ${node} via ${viaText(p)} in ${p.ms} ms\n`,
        );
      },
    },
  )) as { direct: boolean; path: string; via: string; punch?: { ok: boolean; detail: string } };
  if (json) printJson(result);
  if (!result.direct) {
    const why = result.punch && !result.punch.ok ? `; hole punch: ${result.punch.detail}` : '';
    throw new CliError(`direct connection not established within ${timeoutS} s (path: ${result.path}${why})`);
  }
}

/** Registers the mesh verbs. */
export function registerMesh(program: Command): void {
  program
    .command('status')
    .description("this node's identity, addresses and peer counts")
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) => {
      const agent = agentOf(cmd);
      const s = (await agent.call('node.status')) as Status;
      // Exposed services, SOCKS and tunnel counters (issue 6); absent on an agent without tunnels.
      const t = (await agent.call('tunnels.status').catch(() => undefined)) as TunnelStatus | undefined;
      if (wantsJson(cmd)) return printJson(t ? { ...s, tunnels: t } : s);
      process.stdout.write(
        `node     ${s.name} (${s.peerId})\n` +
          `network  ${s.networkId}${s.admin ? ' (admin key on this node)' : ''}\n` +
          `version  ${s.version}, up ${formatDuration(s.uptimeS)}` +
          (s.agent ? `, pid ${s.agent.pid}, ${s.agent.rssMb} MB RSS\n` : '\n') +
          (s.reachability ? reachLine(s.reachability) : '') +
          `peers    ${s.peers.online} online, ${s.peers.suspect} suspect, ${s.peers.down} down\n` +
          `listen   ${s.addrs.join('\n         ') || '-'}\n` +
          `door     ${s.door?.join('\n         ') || 'off (this node admits nobody; mesh.door in config.yaml)'}\n`,
      );
      if (t) {
        const svc = t.services.map(
          (x) => `${x.name}:${x.port}${x.source === 'manual' ? '' : ` (${x.source})`}`,
        );
        process.stdout.write(
          `services ${svc.join(', ') || "none; expose one with 'plexus expose NAME PORT'"}\n` +
            `socks    ${t.socks ?? 'off'}\n` +
            `tunnels  ${t.tunnels.active} open (${t.tunnels.inbound} in, ${t.tunnels.outbound} out), ${t.forwards} forwards` +
            // The ports to open in a firewall next to the mesh port (docs/tunnels.md).
            `, data port ${t.tunnels.dataPort ?? 'off'}` +
            (t.tunnels.splicePort ? `, splice port ${t.tunnels.splicePort}` : '') +
            '\n' +
            splicesLine(t.tunnels.splices),
        );
      }
    });

  /** A refused or lost claim, as `mesh.conflicts` returns it. */
  interface Conflict {
    at: number;
    code: string;
    message: string;
  }

  program
    .command('peers')
    .description('every other node with its state, path and latency')
    .option('--json', 'print JSON')
    .action(async (_opts, cmd: Command) => {
      const agent = agentOf(cmd);
      const peers = (await agent.call('mesh.peers')) as Peer[];
      // Refused claims to a name or a token use of the last day go to stderr, so `--json` output
      // keeps its shape; `plexus audit` keeps them all.
      const conflicts = (await agent.call('mesh.conflicts')) as Conflict[];
      for (const c of conflicts.filter((x) => x.at > Date.now() - 86_400_000).slice(0, 5)) {
        process.stderr.write(`warning: ${new Date(c.at).toISOString()} ${c.code}: ${c.message}\n`);
      }
      if (wantsJson(cmd)) return printJson(peers);
      if (peers.length === 0) {
        process.stdout.write("no other nodes yet; add one with 'plexus token create' and 'plexus join'\n");
        return;
      }
      printTable(
        ['name', 'state', 'path', 'rtt', 'cpu', 'mem', 'disk', 'apps', 'edge', 'last seen', 'peer id'],
        peers.map((p) => {
          const t = p.telemetry as RecordFigures | undefined;
          return [
            p.name,
            p.state,
            p.connection,
            p.rttMs == null ? '-' : `${p.rttMs}ms`,
            pctCell(t?.cpu?.pct),
            memCell(t),
            diskCell(t),
            appsCell(t),
            edgeCell(t),
            ago(p.lastSeen),
            `…${p.peerId.slice(-12)}`,
          ];
        }),
      );
      const certs = certProblemLines(
        peers.map((p) => ({ name: p.name, telemetry: p.telemetry as RecordFigures })),
      );
      if (certs.length)
        process.stdout.write(`\ncertificate problems:\n${certs.map((l) => `  ${l}\n`).join('')}`);
    });

  program
    .command('ping')
    .description('measure round-trip time to a node over the mesh')
    .argument('<node>', 'node name')
    .option('-c, --count <n>', 'number of pings', '3')
    .option('--until-direct', 'ping every second until the path is direct (starts a hole punch if relayed)')
    .option('--timeout <seconds>', 'how long --until-direct waits', '30')
    .option('--json', 'print JSON')
    .action(async (node: string, opts, cmd: Command) => {
      if (opts.untilDirect) return pingUntilDirect(cmd, node, opts.timeout);
      const count = Number(opts.count);
      if (!Number.isInteger(count) || count < 1 || count > 1000)
        throw new UsageError('--count must be 1..1000');
      const json = wantsJson(cmd);
      const result = (await agentOf(cmd).call(
        'mesh.ping',
        { node, count },
        {
          onData: (d) => {
            const { seq, ms } = d as { seq: number; ms: number };
            if (!json) process.stdout.write(`reply from ${node}: seq=${seq} time=${ms} ms\n`);
          },
        },
      )) as { sent: number; received: number; lost: number; rttMs: number[]; connection: string };
      if (json) return printJson(result);
      const r = result.rttMs;
      const avg = r.length ? (r.reduce((a, b) => a + b, 0) / r.length).toFixed(1) : '-';
      process.stdout.write(
        `${result.sent} sent, ${result.received} received, ${result.lost} lost; ` +
          `rtt min/avg/max ${r.length ? Math.min(...r) : '-'}/${avg}/${r.length ? Math.max(...r) : '-'} ms (${result.connection})\n`,
      );
    });

  program
    .command('revoke')
    .description('revoke a node: every node drops and refuses it (needs the admin key)')
    .argument('<node>', 'node name or peer id')
    .option('--reason <text>', 'recorded with the revocation')
    .option('--rotate', 'then move the mesh to a new swarm key, so its copy of the old one gets it nothing')
    .option('--json', 'print JSON')
    .action(async (node: string, opts, cmd: Command) => {
      if (opts.rotate) refuseRemoteRotation(cmd);
      const r = (await agentOf(cmd).call('mesh.revoke', { node, reason: opts.reason })) as {
        name: string;
        peerId: string;
      };
      if (!wantsJson(cmd))
        process.stdout.write(`revoked ${r.name} (${r.peerId}); every node will drop it within seconds\n`);
      const rotation = opts.rotate ? await rotateAndReport(cmd, true) : undefined;
      if (wantsJson(cmd)) return printJson(rotation ? { ...r, rotation } : r);
    });
}
