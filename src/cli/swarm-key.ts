/**
 * `plexus rotate-swarm-key [--status]`: move the mesh to a new swarm key (docs/mesh.md, Rotating
 * the swarm key), then wait for the switch and say which members hold the new key. `plexus
 * revoke NODE --rotate` ends with the same.
 */
import type { Command } from 'commander';
import { agentOf, wantsJson } from './context.ts';
import { UsageError } from './errors.ts';
import { printJson, printTable } from './output.ts';

interface Rotated {
  epoch: number;
  keyId: string;
  switchAt: number;
  revoked: string[];
}

interface SwarmStatus {
  epoch: number;
  keyId: string;
  pending: { epoch: number; switchAt: number } | null;
  members: { name: string; peerId: string; epoch: number | null }[];
}

/** How long after its switch time the CLI waits for every member to report the new epoch. */
const REPORT_GRACE_MS = 20_000;

/** The rotation is made and signed where admin.key lives; refuse to send it elsewhere. */
export function refuseRemoteRotation(cmd: Command): void {
  const o = cmd.optsWithGlobals() as { node?: string };
  if (process.env.PLEXUS_API || o.node)
    throw new UsageError(
      "rotate-swarm-key runs on the node that holds keys/admin.key: run 'plexus rotate-swarm-key' there, without --api or --node",
    );
}

/**
 * Rotates, waits for the switch (unless `wait` is false) and says who holds the new key; with
 * `--json` it prints nothing and returns what happened, for the caller to print.
 */
export async function rotateAndReport(cmd: Command, wait: boolean): Promise<object> {
  refuseRemoteRotation(cmd);
  const agent = agentOf(cmd);
  const r = (await agent.call('mesh.swarm.rotate')) as Rotated;
  const json = wantsJson(cmd);
  if (!json)
    process.stdout.write(
      `swarm key epoch ${r.epoch} made; new connections switch to it at ${new Date(r.switchAt).toISOString()}` +
        `${r.revoked.length ? ` (refused to ${r.revoked.length} revoked node(s))` : ''}\n`,
    );
  if (!wait) return r;
  let status: SwarmStatus;
  for (;;) {
    status = (await agent.call('mesh.swarm.status')) as SwarmStatus;
    const done = status.epoch >= r.epoch && status.members.every((m) => (m.epoch ?? 0) >= r.epoch);
    if ((done && Date.now() > r.switchAt) || Date.now() > r.switchAt + REPORT_GRACE_MS) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  const behind = status.members.filter((m) => (m.epoch ?? 0) < r.epoch);
  const result = { ...r, switched: status.epoch >= r.epoch, behind };
  if (json) return result;
  const held = status.members.length - behind.length;
  process.stdout.write(
    `switched: this node ${status.epoch >= r.epoch ? 'uses' : 'does NOT yet use'} epoch ${r.epoch}; ` +
      `${held}/${status.members.length} other members hold it\n`,
  );
  if (behind.length)
    process.stdout.write(
      `not yet: ${behind.map((m) => `${m.name} (${m.epoch === null ? 'no record: off or unreachable' : `epoch ${m.epoch}`})`).join(', ')}\n` +
        'a member that was off asks a join door for the new key when it is back\n',
    );
  return result;
}

/** Registers `rotate-swarm-key`. */
export function registerSwarmKey(program: Command): void {
  program
    .command('rotate-swarm-key')
    .description(
      'move the whole mesh to a new swarm key; old copies of it get nothing (needs admin.key here)',
    )
    .option('--status', "show this node's epoch and each member's, rotate nothing")
    .option('--no-wait', 'return once the rotation is made, without waiting for the switch')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      if (!opts.status) {
        const r = await rotateAndReport(cmd, opts.wait);
        return wantsJson(cmd) ? printJson(r) : undefined;
      }
      const s = (await agentOf(cmd).call('mesh.swarm.status')) as SwarmStatus;
      if (wantsJson(cmd)) return printJson(s);
      process.stdout.write(
        `epoch ${s.epoch} (key id ${s.keyId.slice(0, 12)}…)` +
          (s.pending
            ? `, epoch ${s.pending.epoch} pending until ${new Date(s.pending.switchAt).toISOString()}`
            : '') +
          '\n',
      );
      printTable(
        ['member', 'epoch'],
        s.members.map((m) => [m.name, m.epoch ?? '-']),
      );
    });
}
