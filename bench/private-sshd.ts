/**
 * A private sshd on a loopback port for the benches' baselines (`ssh … true`, `ssh -L`): its own
 * host key, key auth only, config in the given temp dir. The system sshd is never touched.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { countInStates } from '../src/workloads/private-port.ts';
import { freePort, waitFor } from '../test/helpers/cluster.ts';

/** Client options for a throwaway sshd: no host key checks or known_hosts writes, no chatter. */
export const SSH_CLIENT_OPTS = [
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'LogLevel=ERROR',
];

/** A running private sshd. */
export interface PrivateSshd {
  port: number;
  /** Client private key accepted by it. */
  key: string;
  pid: number;
  stop(): void;
}

/** Starts sshd (installing Debian's openssh-server first if it is missing) and waits for it. */
export async function privateSshd(dir: string): Promise<PrivateSshd> {
  if (spawnSync('test', ['-x', '/usr/sbin/sshd']).status !== 0) {
    spawnSync(
      'sh',
      ['-c', 'flock /tmp/plexus-apt.lock apt-get install -y -qq openssh-server openssh-client'],
      {
        stdio: 'ignore',
      },
    );
  }
  if (spawnSync('test', ['-x', '/usr/sbin/sshd']).status !== 0) {
    throw new Error('openssh-server is not installed and apt-get could not install it');
  }
  const port = await freePort();
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  writeFileSync(join(dir, 'authorized_keys'), execFileSync('cat', [join(dir, 'client_key.pub')]), {
    mode: 0o600,
  });
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'AllowTcpForwarding yes',
      'UsePAM no',
      'StrictModes no',
      '',
    ].join('\n'),
  );
  // Privilege separation needs this directory; Debian's service unit normally creates it.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
  await waitFor(() => tcpOpen(port), 10_000, 'private sshd');
  return { port, key: join(dir, 'client_key'), pid: proc.pid ?? 0, stop: () => proc.kill() };
}

/** The kernel's TCP_LISTEN, as /proc/net/tcp writes it. */
const LISTEN = new Set(['0A']);

/**
 * True once a socket listens on TCP `port` (IPv4), read from /proc/net/tcp: no connection is
 * made, so an `ssh -L` port is found ready without opening a channel to its target (a source
 * would start streaming to it).
 */
export function tcpListening(port: number): boolean {
  return countInStates(readFileSync('/proc/net/tcp', 'latin1'), port, LISTEN) > 0;
}

/** True once something accepts TCP on 127.0.0.1:port. */
export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
