/** `plexus repair [--diagnose]`: check an installed node, fix what is safe (src/install/repair.ts). */
import type { Command } from 'commander';
import { dataPaths } from '../config/paths.ts';
import type { AgentView } from '../install/repair.ts';
import { socketClient } from './client.ts';
import { wantsJson } from './context.ts';
import { CliError } from './errors.ts';
import { examples } from './examples.ts';
import { printJson, printTable } from './output.ts';

/** Asks the local agent for what the mesh checks need; undefined when it does not answer. */
async function agentView(data: string): Promise<AgentView | undefined> {
  const client = socketClient(dataPaths(data).socket);
  const signal = AbortSignal.timeout(5_000);
  try {
    const s = (await client.call('node.status', {}, { signal })) as {
      peers: { total: number; online: number };
    };
    const peers = (await client.call('mesh.peers', {}, { signal })) as {
      name: string;
      connection: string;
      telemetry?: { ts?: number };
    }[];
    return {
      peersTotal: s.peers.total,
      peersOnline: s.peers.online,
      relayed: peers.filter((p) => p.connection === 'relayed').length,
      peerClocks: peers.flatMap((p) => (p.telemetry?.ts ? [{ name: p.name, ts: p.telemetry.ts }] : [])),
      now: Date.now(),
    };
  } catch {
    return undefined;
  }
}

/** Registers `repair`. */
export function registerRepair(program: Command): void {
  program
    .command('repair')
    .description('check keys, config, database, ports, unit, clock, peers and disk; fix what is safe')
    .option('--diagnose', 'only report, change nothing')
    .option('--json', 'print JSON')
    .addHelpText('after', examples('sudo plexus repair --diagnose', 'sudo plexus repair'))
    .action(async (opts: { diagnose?: boolean }, cmd: Command) => {
      if (process.getuid?.() !== 0)
        throw new CliError('plexus repair reads the keys and the unit: run it as root');
      const { installLayout, repair } = await import('../install/index.ts');
      const layout = installLayout();
      const results = await repair(layout, await agentView(layout.data), Boolean(opts.diagnose));
      if (wantsJson(cmd)) printJson(results);
      else
        printTable(
          ['check', 'status', 'detail'],
          results.map((r) => [r.check, r.status, r.detail]),
        );
      if (results.some((r) => r.status === 'broken')) process.exitCode = 1;
    });
}
