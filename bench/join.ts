/**
 * Join latency and idle cost of the mesh (issue 2).
 *
 *   node bench/join.ts [--sizes 5,20] [--runs 3] [--idle-s 60]
 *
 * For each size N it builds a network of N-1 agents (separate processes on loopback), then, per
 * run, joins one more node with a token and measures from starting its agent to it being
 * `online` on every other node (polled over the control sockets every 20 ms). It reports the
 * median and max. Then, on a 5-node mesh left idle, it reports each agent's RSS and CPU share
 * over `--idle-s` seconds (from /proc), against the targets (2 s at 20 nodes; 100 MB, 1 % CPU).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { socketClient } from '../src/cli/client.ts';
import { startCluster, type TestNode } from '../test/helpers/cluster.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '5,20' },
    runs: { type: 'string', default: '3' },
    'idle-s': { type: 'string', default: '60' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const runs = Number(values.runs);
const idleS = Number(values['idle-s']);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function onlineEverywhere(nodes: TestNode[], name: string): Promise<boolean> {
  const views = await Promise.all(
    nodes.map(
      (n) =>
        socketClient(join(n.dataDir, 'plexus.sock')).call('mesh.peers') as Promise<
          { name: string; state: string }[]
        >,
    ),
  );
  return views.every((peers) => peers.some((p) => p.name === name && p.state === 'online'));
}

async function joinLatency(size: number): Promise<number[]> {
  const cluster = await startCluster(size - 1, { prefix: 'b' });
  const results: number[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      const name = `joiner${r}`;
      const others = [...cluster.nodes];
      // Join (token check + admission + key writing) is setup; the clock starts with the agent.
      const node = await cluster.join(name);
      const t0 = performance.now();
      // Not awaited: start() waits for a CLI `status` to answer, which would add a CLI spawn's
      // latency to the figure. The clock runs from the spawn until every other node sees it.
      const started = node.start();
      for (;;) {
        if (await onlineEverywhere(others, name)) break;
        if (performance.now() - t0 > 60_000) throw new Error(`${name} not online everywhere after 60 s`);
        await new Promise((res) => setTimeout(res, 20));
      }
      results.push(performance.now() - t0);
      await started;
      cluster.nodes.push(node);
      process.stderr.write(`  size ${size} run ${r + 1}: ${(results.at(-1)! / 1000).toFixed(2)} s\n`);
    }
  } finally {
    await cluster.stop();
  }
  return results;
}

function procStat(pid: number): { cpuTicks: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const rssPages = Number(fields[21]);
  return { cpuTicks, rssMb: (rssPages * 4096) / 1024 / 1024 };
}

async function idleCost(): Promise<{ name: string; rssMb: number; cpuPct: number }[]> {
  const cluster = await startCluster(5, { prefix: 'i' });
  try {
    await new Promise((res) => setTimeout(res, 5000));
    const before = cluster.nodes.map((n) => procStat(n.proc!.pid!));
    const t0 = performance.now();
    await new Promise((res) => setTimeout(res, idleS * 1000));
    const secs = (performance.now() - t0) / 1000;
    return cluster.nodes.map((n, i) => {
      const after = procStat(n.proc!.pid!);
      // /proc ticks are USER_HZ = 100 per second on Linux.
      return {
        name: n.name,
        rssMb: after.rssMb,
        cpuPct: ((after.cpuTicks - before[i].cpuTicks) / 100 / secs) * 100,
      };
    });
  } finally {
    await cluster.stop();
  }
}

console.log('# plexus mesh bench: join latency and idle cost (loopback, separate agent processes)');
for (const size of sizes) {
  const r = await joinLatency(size);
  console.log(
    `join latency, ${size} nodes: median ${(median(r) / 1000).toFixed(2)} s, max ${(Math.max(...r) / 1000).toFixed(2)} s over ${r.length} runs (target ≤ 2 s at 20)`,
  );
}
if (idleS > 0) {
  const idle = await idleCost();
  for (const x of idle)
    console.log(`idle ${x.name}: RSS ${x.rssMb.toFixed(0)} MB, CPU ${x.cpuPct.toFixed(2)} % over ${idleS} s`);
  console.log(
    `idle max: RSS ${Math.max(...idle.map((x) => x.rssMb)).toFixed(0)} MB (target ≤ 100), CPU ${Math.max(...idle.map((x) => x.cpuPct)).toFixed(2)} % (target < 1)`,
  );
}
