/**
 * Runs a test file again inside a fresh network namespace of its own (loopback up), for tests
 * whose agent writes kernel state: the kernel redirect's nftables table (issue 18) then lives and
 * dies with that namespace, never in the host's tables. The file checks `insideNetns()` to tell
 * which of the two runs it is.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const ENV = 'PLEXUS_TEST_NETNS';

/** The namespace this process runs in, when a parent run put it there. */
export function insideNetns(): string | undefined {
  return process.env[ENV];
}

/** Why the redirect tests cannot run here (installs nftables with apt-get when it is missing). */
export function redirectUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the kernel redirect tests need root (network namespaces, nftables)';
  const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!have('nft') || !have('ip')) {
    spawnSync(
      'sh',
      [
        '-c',
        'flock /tmp/plexus-apt.lock sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables iproute2"',
      ],
      { stdio: 'ignore', timeout: 300_000 },
    );
    if (!have('nft') || !have('ip'))
      return 'nft or ip is missing and apt-get could not install nftables/iproute2';
  }
  const probe = `pxrd${randomBytes(3).toString('hex')}`;
  const ok = spawnSync('ip', ['netns', 'add', probe]).status === 0;
  spawnSync('ip', ['netns', 'del', probe]);
  return ok ? undefined : 'cannot create network namespaces here (no CAP_SYS_ADMIN?)';
}

/**
 * Runs `file` with node's test runner inside a new namespace, then deletes the namespace (and
 * with it every rule). Resolves to the run's exit code and its output.
 */
export function runInFreshNetns(file: string): Promise<{ code: number | null; output: string }> {
  return execInFreshNetns([
    process.execPath,
    '--test',
    '--test-reporter=spec',
    '--test-timeout=240000',
    file,
  ]);
}

/**
 * Runs `argv` inside a new namespace (`inherit`: on this process's stdout and stderr), then
 * deletes the namespace. Resolves to the exit code and the output (empty when inherited).
 */
export async function execInFreshNetns(
  argv: string[],
  inherit = false,
): Promise<{ code: number | null; output: string }> {
  const ns = `pxrd${randomBytes(3).toString('hex')}`;
  const sh = (...args: string[]) => {
    const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  };
  sh('ip', 'netns', 'add', ns);
  try {
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
      env: childEnv(ns),
      stdio: ['ignore', inherit ? 'inherit' : 'pipe', inherit ? 'inherit' : 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (c) => (output += c));
    child.stderr?.on('data', (c) => (output += c));
    const code = await new Promise<number | null>((r) => child.once('close', r));
    return { code, output };
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

/** The parent's environment with the namespace set, without the test runner's own protocol variable. */
function childEnv(ns: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, [ENV]: ns };
  // Set by a parent `node --test`: the child would answer in its binary protocol, not as text.
  delete env.NODE_TEST_CONTEXT;
  return env;
}
