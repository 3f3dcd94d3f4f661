/**
 * Network namespaces for NAT tests and benches (root + iproute2 + iptables): a "public" LAN
 * where dialable nodes live, and a NAT'd LAN behind a gateway namespace that masquerades
 * outbound connections and drops every inbound one. Outbound traffic from the NAT'd LAN may be
 * limited to a few public ports (the relays), so that the only way in is a circuit relay.
 * Names are unique per run; `destroy()` removes everything (deleting a namespace removes its
 * veths and rules). Traffic stays inside the namespaces created here.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Why NAT tests cannot run here, or undefined when they can (installs tools with apt-get if missing). */
export function natUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'NAT tests need root (network namespaces and iptables)';
  const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!have('ip') || !have('iptables')) {
    const r = spawnSync(
      'sh',
      [
        '-c',
        'flock /tmp/plexus-apt.lock sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 iptables"',
      ],
      { stdio: 'ignore', timeout: 300_000 },
    );
    if (r.status !== 0 || !have('ip') || !have('iptables'))
      return 'NAT tests need iproute2 and iptables, and apt-get could not install them';
  }
  const probe = `px5p${randomBytes(3).toString('hex')}`;
  const ok = spawnSync('ip', ['netns', 'add', probe]).status === 0;
  spawnSync('ip', ['netns', 'del', probe]);
  return ok ? undefined : 'cannot create network namespaces here (no CAP_SYS_ADMIN?)';
}

/** The namespaces and addresses of one NAT topology. */
export interface NatTopology {
  /** Namespace of the dialable nodes. */
  pub: string;
  /** Namespace of the node behind NAT. */
  nat: string;
  gw: string;
  /** Address of the public LAN's nodes (one IP, one port per node). */
  pubIp: string;
  /** Address of the NAT'd node on its private LAN. */
  natIp: string;
  /** Allows new outbound connections from the NAT'd LAN to these public TCP ports only. */
  allowEgress(ports: number[]): void;
  destroy(): void;
}

function sh(args: string[]): void {
  execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Creates the namespaces, veths, routes and the masquerading gateway. */
export function createNatTopology(): NatTopology {
  const id = randomBytes(2).toString('hex');
  const p = `px5${id}`;
  const [pub, gw, nat] = [`${p}pub`, `${p}gw`, `${p}nat`];
  // Private /24s picked per run so parallel runs never share an address.
  const o = (parseInt(id, 16) % 200) + 20;
  const pubIp = `10.${o}.1.1`;
  const gwPubIp = `10.${o}.1.254`;
  const gwNatIp = `10.${o}.2.1`;
  const natIp = `10.${o}.2.2`;
  const created: string[] = [];
  const destroy = () => {
    for (const ns of created.reverse()) spawnSync('ip', ['netns', 'del', ns]);
    created.length = 0;
  };
  try {
    for (const ns of [pub, gw, nat]) {
      sh(['ip', 'netns', 'add', ns]);
      created.push(ns);
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    sh(['ip', 'link', 'add', `${p}a`, 'netns', pub, 'type', 'veth', 'peer', 'name', `${p}b`, 'netns', gw]);
    sh(['ip', 'link', 'add', `${p}c`, 'netns', gw, 'type', 'veth', 'peer', 'name', `${p}d`, 'netns', nat]);
    sh(['ip', '-n', pub, 'addr', 'add', `${pubIp}/24`, 'dev', `${p}a`]);
    sh(['ip', '-n', gw, 'addr', 'add', `${gwPubIp}/24`, 'dev', `${p}b`]);
    sh(['ip', '-n', gw, 'addr', 'add', `${gwNatIp}/24`, 'dev', `${p}c`]);
    sh(['ip', '-n', nat, 'addr', 'add', `${natIp}/24`, 'dev', `${p}d`]);
    for (const [ns, dev] of [
      [pub, `${p}a`],
      [gw, `${p}b`],
      [gw, `${p}c`],
      [nat, `${p}d`],
    ])
      sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    sh(['ip', '-n', nat, 'route', 'add', 'default', 'via', gwNatIp]);
    sh(['ip', 'netns', 'exec', gw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const ipt = (...rule: string[]) => sh(['ip', 'netns', 'exec', gw, 'iptables', ...rule]);
    ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', `${p}b`, '-j', 'MASQUERADE');
    ipt('-P', 'FORWARD', 'DROP');
    // Replies to connections the NAT'd side opened come back in; nothing else does.
    ipt('-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
    return {
      pub,
      nat,
      gw,
      pubIp,
      natIp,
      allowEgress(ports) {
        for (const port of ports)
          ipt(
            '-A',
            'FORWARD',
            '-i',
            `${p}c`,
            '-o',
            `${p}b`,
            '-p',
            'tcp',
            '--dport',
            String(port),
            '-j',
            'ACCEPT',
          );
      },
      destroy,
    };
  } catch (err) {
    destroy();
    throw err;
  }
}

/** An agent running inside a namespace. */
export interface NsNode {
  name: string;
  ns: string;
  dataDir: string;
  meshAddr: string;
  api: string;
  proc?: import('node:child_process').ChildProcess;
  /** Runs a CLI verb inside the namespace against this node's data dir. */
  run(
    args: string[],
    opts?: { timeoutMs?: number },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  json<T>(args: string[]): Promise<T>;
  /** Runs `init` or `join TOKEN …` with this node's name, listen, API and SOCKS flags; throws on failure. */
  setup(verb: string[], socks?: string): Promise<void>;
  start(env?: NodeJS.ProcessEnv): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  output(): string;
}

/** The join door port of a namespaced node: its mesh port + 1000. */
export function doorPort(meshPort: number): number {
  return meshPort + 1000;
}

/** Describes an agent in `ns` listening on `ip:meshPort`, API on `ip:apiPort`, door on `doorPort`. */
export async function nsNode(
  ns: string,
  root: string,
  name: string,
  ip: string,
  meshPort: number,
  apiPort: number,
): Promise<NsNode> {
  const { spawn } = await import('node:child_process');
  const { join } = await import('node:path');
  const { PLEXUS, waitFor } = await import('./cluster.ts');
  const { execFile } = await import('node:child_process');
  const dataDir = join(root, name);
  let out = '';
  const exec = (args: string[], timeoutMs = 60_000) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'ip',
        ['netns', 'exec', ns, PLEXUS, ...args],
        { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const code = err
            ? typeof (err as { code?: unknown }).code === 'number'
              ? (err as { code: number }).code
              : 1
            : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  const node: NsNode = {
    name,
    ns,
    dataDir,
    meshAddr: `/ip4/${ip}/tcp/${meshPort}`,
    api: `${ip}:${apiPort}`,
    run: (args, o = {}) => exec(['--data-dir', dataDir, ...args], o.timeoutMs),
    async setup(verb, socks = 'off') {
      const r = await node.run([
        ...verb,
        '--name',
        name,
        '--listen',
        node.meshAddr,
        // A fixed door port, so that a NAT test can let a node reach it (doorPort below).
        '--door',
        `/ip4/${ip}/tcp/${doorPort(meshPort)}`,
        '--api',
        node.api,
        '--socks',
        socks,
      ]);
      if (r.code !== 0) throw new Error(`${name}: plexus ${verb[0]}: ${r.stderr}`);
    },
    async json<T>(args: string[]) {
      const r = await exec(['--data-dir', dataDir, ...args, '--json']);
      if (r.code !== 0) throw new Error(`${name}: plexus ${args.join(' ')}: ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
    async start(env = {}) {
      out = '';
      const proc = spawn('ip', ['netns', 'exec', ns, PLEXUS, 'agent', '--data-dir', dataDir], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const keep = (d: Buffer) => {
        out += d;
        if (out.length > 1_000_000) out = out.slice(-500_000);
      };
      proc.stdout?.on('data', keep);
      proc.stderr?.on('data', keep);
      node.proc = proc;
      await waitFor(
        async () => {
          if (proc.exitCode !== null) throw new Error(`agent ${name} exited: ${out.slice(-2000)}`);
          return (await node.run(['status'])).code === 0;
        },
        30_000,
        `agent ${name} to start`,
        200,
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
