/** Socket helpers shared by the tunnel tests. */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { clientTlsOptions, serverSecureContext } from '../../src/tunnels/carriers/data/tls.ts';

/** Everything a socket (or an in-process end) receives until its end. */
export function readAll(s: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

/**
 * Writes 1 MiB blocks into `s` until it has said "stop" (no drain) for half a second, or
 * `maxBlocks` were written; returns the bytes written. Below the maximum means something
 * downstream held the writer back.
 */
export async function writeUntilHeldBack(s: Duplex, maxBlocks: number): Promise<number> {
  const block = Buffer.alloc(1024 * 1024);
  let written = 0;
  for (let i = 0; i < maxBlocks; i++) {
    written += block.length;
    if (!s.write(block)) {
      const drained = await Promise.race([
        once(s, 'drain').then(() => true),
        new Promise((r) => setTimeout(() => r(false), 500)),
      ]);
      if (!drained) break;
    }
  }
  return written;
}

/** A connected socket pair over loopback, [client end, server end]; the server joins `servers`. */
export async function socketPair(servers: Server[]): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect({
    port: (server.address() as { port: number }).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
  });
  await once(client, 'connect');
  const [srv] = await accepted;
  return [client, srv];
}

/** A half-close-capable TCP connection to 127.0.0.1:`port`. */
export function dialLoopback(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** A connected TLS 1.3 pair over loopback, keyed by a PSK like tunnel data connections. */
export async function tlsPair(): Promise<{ client: TLSSocket; server: TLSSocket; close(): void }> {
  const psk = randomBytes(32);
  let accept: (s: Socket) => void = () => {};
  const raw = new Promise<Socket>((r) => {
    accept = r;
  });
  const listener = createServer((s) => accept(s));
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as { port: number }).port;
  const client = tlsConnect({ host: '127.0.0.1', port, ...clientTlsOptions('id', psk) });
  const server = new TLSSocket(await raw, {
    isServer: true,
    secureContext: serverSecureContext(),
    pskCallback: () => psk,
  } as ConstructorParameters<typeof TLSSocket>[1]);
  listener.close();
  await Promise.all([
    new Promise((r) => server.once('secure', r)),
    new Promise((r) => client.once('secureConnect', r)),
  ]);
  return {
    client,
    server,
    close: () => {
      client.destroy();
      server.destroy();
    },
  };
}
