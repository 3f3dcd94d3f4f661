/**
 * Cost of collecting this node's telemetry figures (issue 4: collecting every 5 s must cost
 * under 1 % of a core). Measures CPU time per collection of the /proc collector, and of
 * systeminformation doing the same job as the baseline, in the same run.
 *
 *   node bench/telemetry-collect.ts [collections=200]
 */
import { pino } from 'pino';
import { ProcessSampler } from '../src/telemetry/app-source.ts';
import { SystemCollector } from '../src/telemetry/system-collector.ts';

const N = Number(process.argv[2] ?? 200);
const INTERVAL_S = 5;
const logger = pino({ level: 'silent' });

async function cpuPerCall(label: string, fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 5; i++) await fn(i); // warm up (JIT, first reads)
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await fn(i + 5);
  const cpu = process.cpuUsage(c0);
  const wall = performance.now() - t0;
  const ms = (cpu.user + cpu.system) / 1000 / N;
  const pct = (ms / (INTERVAL_S * 1000)) * 100;
  console.log(
    `${label.padEnd(34)} ${ms.toFixed(3)} ms CPU per collection (${(wall / N).toFixed(2)} ms wall)  →  ${pct.toFixed(4)} % of a core at one per ${INTERVAL_S} s`,
  );
  return ms;
}

// Each call passes a later `now` so the collector never reuses its cached sample.
const proc = new SystemCollector({ source: 'proc' }, { logger });
const procMs = await cpuPerCall('/proc + statfs (plexus)', (i) => proc.sample(1e12 + i * 5000));

const sampler = new ProcessSampler();
const pids = [process.pid, process.ppid].filter((p) => p > 1);
await cpuPerCall(`per-app /proc/PID sample ×${pids.length}`, async (i) => {
  for (const pid of pids) await sampler.sample(pid, 1e12 + i * 5000);
});

const si = new SystemCollector({ source: 'systeminformation' }, { logger });
const siMs = await cpuPerCall('systeminformation (baseline)', (i) => si.sample(1e12 + i * 5000));

console.log(`\nratio: systeminformation costs ${(siMs / procMs).toFixed(1)}× the /proc collector`);
