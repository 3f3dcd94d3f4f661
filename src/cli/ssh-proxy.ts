/**
 * `plexus ssh-proxy NODE [PORT]`: an ssh ProxyCommand over the mesh (issue 16; docs/shell.md).
 * It asks the local agent's SOCKS5 proxy (socks.listen) for a tunnel to NODE's exposed `ssh`
 * service, or to NODE's exposed PORT, and joins it to stdin and stdout, so plain ssh, scp and
 * rsync reach a node's own sshd, behind NAT too:
 *   ssh -o ProxyCommand='plexus ssh-proxy %h' root@web-2
 * `plexus ssh-config` prints a `Host *.plexus` block that sets this up for every node.
 */
import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import type { Command } from 'commander';
import { dataPaths } from '../config/paths.ts';
import { dataDirOf } from './context.ts';
import { CliError, UsageError } from './errors.ts';

/** The SOCKS5 reply codes the agent's proxy answers with (src/tunnels/socks). */
const REFUSALS: Record<number, (node: string, what: string) => string> = {
  2: (node) => `'${node}' is not a mesh node name`,
  4: (node) => `no node '${node}' in the mesh (or it cannot be reached now)`,
  5: (node, what) =>
    what === 'ssh'
      ? `${node} exposes no ssh service: run 'plexus expose ssh 22' on it (its sshd's port)`
      : `${node} does not expose port ${what}, or nothing listens there: 'plexus expose NAME ${what}' on it`,
};

/** The local agent's SOCKS5 address: PLEXUS_SOCKS__LISTEN, else socks.listen in DATA/config.yaml. */
export async function socksAddress(configFile: string): Promise<{ host: string; port: number }> {
  let listen = process.env.PLEXUS_SOCKS__LISTEN;
  if (!listen && existsSync(configFile)) {
    const { parse } = await import('yaml');
    listen = (parse(readFileSync(configFile, 'utf8')) as { socks?: { listen?: string } })?.socks?.listen;
  }
  listen ??= '127.0.0.1:7072';
  if (listen === 'off')
    throw new CliError(
      "the local agent's SOCKS5 proxy is off (socks.listen: off); ssh-proxy goes through it",
    );
  const cut = listen.lastIndexOf(':');
  return {
    host: listen.slice(0, cut).replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(listen.slice(cut + 1)),
  };
}

/**
 * Runs the SOCKS5 handshake for `host`:`port` on `socket`; resolves once the tunnel is open, with
 * any bytes that came after the reply.
 */
export function socksConnect(
  socket: Socket,
  host: string,
  port: number,
  node: string,
  what: string,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let stage = 0;
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 0 && buf.length >= 2) {
        if (buf[0] !== 5 || buf[1] !== 0) return fail('the agent SOCKS proxy refused the handshake');
        buf = buf.subarray(2);
        stage = 1;
        const name = Buffer.from(host);
        socket.write(
          Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 255])]),
        );
      }
      if (stage === 1 && buf.length >= 10) {
        if (buf[1] !== 0)
          return fail(
            REFUSALS[buf[1]]?.(node, what) ?? `the mesh refused the connection (SOCKS code ${buf[1]})`,
          );
        socket.off('data', onData);
        resolve(buf.subarray(10));
      }
    };
    const fail = (why: string) => {
      socket.destroy();
      reject(new CliError(why));
    };
    socket.on('data', onData);
    socket.write(Buffer.from([5, 1, 0]));
  });
}

/** Registers `ssh-proxy` and `ssh-config`. */
export function registerSshProxy(program: Command): void {
  program
    .command('ssh-proxy')
    .description("an ssh ProxyCommand: the node's sshd over the mesh (needs 'plexus expose ssh 22' there)")
    .argument('<node>', 'node name, with or without .plexus (ssh passes %h)')
    .argument('[port]', "an exposed port instead of the node's ssh service")
    .action(async (nodeArg: string, portArg: string | undefined, _opts, cmd: Command) => {
      const node = nodeArg
        .toLowerCase()
        .replace(/\.$/, '')
        .replace(/\.plexus$/, '');
      if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(node))
        throw new UsageError(`'${nodeArg}' is not a node name`);
      const port = portArg === undefined ? 22 : Number(portArg);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new UsageError('the port must be 1..65535');
      const socks = await socksAddress(dataPaths(dataDirOf(cmd)).config);
      const socket = connect(socks.port, socks.host);
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', (err) =>
          reject(
            new CliError(
              `cannot reach the local agent's SOCKS5 proxy at ${socks.host}:${socks.port}: ${err.message}; is 'plexus agent' running?`,
            ),
          ),
        );
      });
      // `ssh.NODE` is the node's exposed ssh service (its port is the service's); `NODE` + port an exposed port.
      const rest = await socksConnect(
        socket,
        portArg === undefined ? `ssh.${node}` : node,
        port,
        node,
        portArg ?? 'ssh',
      );
      if (rest.length) process.stdout.write(rest);
      socket.setNoDelay(true);
      process.stdin.pipe(socket);
      socket.pipe(process.stdout);
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.once('error', () => resolve());
      });
      process.exit(0);
    });

  program
    .command('ssh-config')
    .description('print a ~/.ssh/config block: ssh, scp and rsync to NODE.plexus go over the mesh')
    .action((_opts, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { dataDir?: string };
      const dir = g.dataDir ?? process.env.PLEXUS_DATA_DIR;
      process.stdout.write(
        [
          "# plexus: ssh NODE.plexus reaches NODE's own sshd over the mesh (expose it there: plexus expose ssh 22)",
          'Host *.plexus',
          `    ProxyCommand plexus${dir ? ` --data-dir ${dir}` : ''} ssh-proxy %h`,
          '    ServerAliveInterval 30',
          '',
        ].join('\n'),
      );
    });
}
