/**
 * e2e helpers: real `bin/plexus` processes with their own data dirs on loopback.
 * `startCluster(n)` creates a network (first node init + agent), joins the others with tokens,
 * starts their agents and waits until every node sees every other online. Everything is torn
 * down by `cluster.stop()` (kill + rm), which tests call in `after`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { killProcessesUnder } from './processes.ts';

const execFileP = promisify(execFile);

/** Repository root. */
export const ROOT = resolve(import.meta.dirname, '..', '..');
/** The CLI under test. */
export const PLEXUS = join(ROOT, 'bin', 'plexus');

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** Result of a CLI run. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `plexus ARGS` and returns its exit code and output (never throws on exit != 0). */
export async function plexus(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileP(PLEXUS, args, {
      env: { ...process.env, ...opts.env },
      timeout: opts.timeoutMs ?? 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === 'number' ? e.code : 1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? String(err),
    };
  }
}

/** Runs a verb with `--json` and parses stdout; throws with stderr on failure. */
export async function plexusJson<T = unknown>(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<T> {
  const r = await plexus([...args, '--json'], opts);
  if (r.code !== 0) throw new Error(`plexus ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as T;
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  fn: () => Promise<T> | T,
  timeoutMs = 20_000,
  what = 'condition',
  stepMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** One agent of a test cluster. */
export interface TestNode {
  name: string;
  dataDir: string;
  meshPort: number;
  apiPort: number;
  socksPort: number;
  proc?: ChildProcess;
  /** Runs a CLI verb against this node's data dir. */
  run(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult>;
  json<T = unknown>(args: string[]): Promise<T>;
  /** Starts (or restarts) the agent process and waits for its control socket. */
  start(env?: NodeJS.ProcessEnv): Promise<void>;
  /** Stops the agent: SIGTERM (default) or SIGKILL. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Agent stdout+stderr so far (for failure messages). */
  output(): string;
}

/** Options for a node. */
export interface NodeOptions {
  /** Extra environment for the agent (e.g. PLEXUS_TELEMETRY__INTERVAL_S). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs `plexus join TOKEN` for `node`: its data dir and mesh port, and with `serve` its API and
 * SOCKS ports too (else both off).
 */
export function joinWith(node: TestNode, token: string, opts: { serve?: boolean } = {}): Promise<RunResult> {
  return plexus([
    'join',
    token,
    '--name',
    node.name,
    '--data-dir',
    node.dataDir,
    '--listen',
    `/ip4/127.0.0.1/tcp/${node.meshPort}`,
    '--api',
    opts.serve ? `127.0.0.1:${node.apiPort}` : 'off',
    '--socks',
    opts.serve ? `127.0.0.1:${node.socksPort}` : 'off',
  ]);
}

/** Creates a node description (no process yet) under `root`. */
export async function makeNode(root: string, name: string, opts: NodeOptions = {}): Promise<TestNode> {
  const dataDir = join(root, name);
  const [meshPort, apiPort, socksPort] = [await freePort(), await freePort(), await freePort()];
  let out = '';
  const node: TestNode = {
    name,
    dataDir,
    meshPort,
    apiPort,
    socksPort,
    run: (args, o = {}) => plexus([...args, '--data-dir', dataDir], o),
    json: (args) => plexusJson([...args, '--data-dir', dataDir]),
    async start(env) {
      out = '';
      const proc = spawn(PLEXUS, ['agent', '--data-dir', dataDir], {
        // No kernel redirect by default: agents here share the host's network namespace, and
        // their nftables rules would land in the host's tables (a test in a netns of its own
        // passes PLEXUS_WORKLOADS__REDIRECT=auto).
        env: { PLEXUS_WORKLOADS__REDIRECT: 'off', ...process.env, ...opts.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proc.stdout?.on('data', (d) => {
        out += d;
        if (out.length > 2_000_000) out = out.slice(-1_000_000);
      });
      proc.stderr?.on('data', (d) => {
        out += d;
      });
      node.proc = proc;
      await waitFor(
        async () => {
          if (proc.exitCode !== null)
            throw new Error(`agent ${name} exited ${proc.exitCode}: ${out.slice(-2000)}`);
          return (await node.run(['status'])).code === 0;
        },
        // Benches start many agents on 2 cores; they may allow more time.
        Number(process.env.PLEXUS_TEST_START_TIMEOUT_MS ?? 20_000),
        `agent ${name} to start`,
        100,
      );
    },
    async stop(signal = 'SIGTERM') {
      const proc = node.proc;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
    output: () => out,
  };
  return node;
}

/** A running test network. */
export interface Cluster {
  root: string;
  nodes: TestNode[];
  byName(name: string): TestNode;
  /** Creates a token on the first node and joins + starts a new node. */
  add(name: string, opts?: NodeOptions): Promise<TestNode>;
  /** Like `add`, but leaves the agent stopped and the node out of `nodes` (for timing its start). */
  join(name: string, opts?: NodeOptions): Promise<TestNode>;
  /** Waits until every running node sees every other as online. */
  waitConverged(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Creates a network of `n` nodes named n1…nN and waits for convergence. */
export async function startCluster(
  n: number,
  opts: NodeOptions & { prefix?: string } = {},
): Promise<Cluster> {
  const root = mkdtempSync(join(tmpdir(), 'plexus-e2e-'));
  chmodSync(root, 0o711); // apps run as users of their own, who pass through to their folders
  const nodes: TestNode[] = [];
  const cluster: Cluster = {
    root,
    nodes,
    byName(name) {
      const node = nodes.find((x) => x.name === name);
      if (!node) throw new Error(`no node ${name}`);
      return node;
    },
    async add(name, o = {}) {
      const node = await cluster.join(name, o);
      await node.start();
      nodes.push(node);
      return node;
    },
    async join(name, o = {}) {
      const node = await makeNode(root, name, { env: { ...opts.env, ...o.env } });
      const first = nodes[0];
      const tok = await first.run(['token', 'create', '--ttl', '10m']);
      if (tok.code !== 0) throw new Error(`token create failed: ${tok.stderr}`);
      const r = await joinWith(node, tok.stdout.trim(), { serve: true });
      if (r.code !== 0) throw new Error(`join ${name} failed: ${r.stderr}`);
      return node;
    },
    async waitConverged(timeoutMs = 30_000) {
      const running = nodes.filter((x) => x.proc && x.proc.exitCode === null && x.proc.signalCode === null);
      await waitFor(
        async () => {
          for (const node of running) {
            const peers = await node.json<{ name: string; state: string }[]>(['peers']);
            for (const other of running) {
              if (other === node) continue;
              if (peers.find((p) => p.name === other.name)?.state !== 'online') return false;
            }
          }
          return true;
        },
        timeoutMs,
        'every node to see every other online',
        200,
      );
    },
    async stop() {
      await Promise.all(nodes.map((x) => x.stop('SIGKILL')));
      // Apps outlive a SIGKILLed agent (their own process groups): they would run on after the test.
      killProcessesUnder(root);
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    const first = await makeNode(root, opts.prefix ? `${opts.prefix}1` : 'n1', opts);
    const r = await plexus([
      'init',
      '--name',
      first.name,
      '--data-dir',
      first.dataDir,
      '--listen',
      `/ip4/127.0.0.1/tcp/${first.meshPort}`,
      '--api',
      `127.0.0.1:${first.apiPort}`,
      '--socks',
      `127.0.0.1:${first.socksPort}`,
    ]);
    if (r.code !== 0) throw new Error(`init failed: ${r.stderr}`);
    await first.start();
    nodes.push(first);
    for (let i = 2; i <= n; i++) await cluster.add(`${opts.prefix ?? 'n'}${i}`);
    if (n > 1) await cluster.waitConverged();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
