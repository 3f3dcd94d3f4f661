/**
 * The TCP ends of the tunnel benches (test/fixtures/tcp-peer.ts), each its own process, optionally
 * inside a network namespace: long-running ones (source, echo, relay) and one-shot ones (sink,
 * latency) whose JSON line is the result.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../test/helpers/cluster.ts';

const PEER = join(ROOT, 'test', 'fixtures', 'tcp-peer.ts');
const NODE = process.execPath;

const command = (args: string[], ns?: string) =>
  ns ? ['ip', 'netns', 'exec', ns, NODE, PEER, ...args] : [NODE, PEER, ...args];

/** Starts a long-running peer (source/echo/relay), optionally in a namespace; resolves with its port. */
export async function startPeer(
  args: string[],
  ns?: string,
): Promise<{ port: number; pid: number; stop(): void }> {
  const cmd = command(args, ns);
  const proc = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout?.once('data', (d) => resolve(Number(String(d).trim())));
    proc.once('exit', (code) => reject(new Error(`peer ${args[0]} exited ${code}`)));
  });
  return { port, pid: proc.pid ?? 0, stop: () => proc.kill() };
}

/** Runs a one-shot peer (sink/latency) and parses its JSON line. */
export function runPeer<T>(args: string[], ns?: string): Promise<T> {
  const cmd = command(args, ns);
  return new Promise((resolve, reject) => {
    execFile(cmd[0], cmd.slice(1), { timeout: 600_000 }, (err, stdout) => {
      try {
        const r = JSON.parse(stdout.trim().split('\n').pop() ?? '');
        if (err) {
          if (process.env.BENCH_DEBUG) console.error(execFileSync('ss', ['-tnpa']).toString());
          reject(new Error(`${args[0]} failed: ${stdout.trim()}`));
        } else resolve(r as T);
      } catch {
        reject(err ?? new Error(`bad output: ${stdout}`));
      }
    });
  });
}
