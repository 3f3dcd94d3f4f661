/**
 * The binary fast path of `plexus cp` (docs/shell.md): the signed `fs.read` / `fs.write` still
 * authorise each file and carry its sha256, but the node answers with a one-shot channel (a
 * tunnel service name and a 32-byte secret) and the bytes go through this machine's agent's
 * SOCKS5 proxy, i.e. the tunnel data path, raw. Without a local agent's proxy (e.g. `--api` to a
 * remote entry), cp falls back to base64 frames on the command stream and says so once.
 */
import type { Hash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import type { Command } from 'commander';
import { dataPaths } from '../config/paths.ts';
import { dataDirOf } from './context.ts';
import { CliError } from './errors.ts';
import { socksAddress, socksConnect } from './ssh-proxy.ts';

/** Where the local agent's SOCKS5 proxy listens. */
export interface SocksRoute {
  host: string;
  port: number;
}

/** What a node announces for a direct copy (its signed `ready` frame). */
export interface ChannelOffer {
  offset: number;
  service: string;
  secret: string;
}

const PROBE_TIMEOUT_MS = 1_000;
/** The upload's read buffers, 1 MiB each (sendRaw). */
const DIRECT_BUFFERS = 4;
/** The download's socket reads (receiveRaw), into one buffer. */
const RECEIVE_READ_BYTES = 64 * 1024;

/** The local SOCKS proxy to copy through, or undefined (after one line on stderr) to use frames. */
export async function directRoute(cmd: Command, node: string): Promise<SocksRoute | undefined> {
  const fallback = (why: string) => {
    process.stderr.write(`plexus: ${why}; copying over the command stream instead (slower)\n`);
    return undefined;
  };
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(node))
    return fallback('the fast path needs a node name, not a peer id');
  let route: SocksRoute;
  try {
    route = await socksAddress(dataPaths(dataDirOf(cmd)).config);
  } catch {
    return fallback("the local agent's SOCKS5 proxy is off");
  }
  const reachable = await new Promise<boolean>((resolve) => {
    const s = connect(route.port, route.host);
    s.setTimeout(PROBE_TIMEOUT_MS, () => s.destroy());
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('close', () => resolve(false));
    s.once('error', () => {});
  });
  return reachable ? route : fallback(`no local agent's SOCKS5 proxy at ${route.host}:${route.port}`);
}

/**
 * Connects to a node's channel through the local proxy and presents its secret. With `sink`,
 * what the node sends after the handshake is read into one reused buffer and handed to it (a
 * chunk is valid during the call only), with no `data` events: a fresh 64 KiB Buffer per read,
 * and the garbage collection after it, was most of a download's CPU in this process.
 */
export async function openChannel(
  route: SocksRoute,
  node: string,
  offer: ChannelOffer,
  sink?: (chunk: Buffer) => void,
): Promise<Socket> {
  const secret = Buffer.from(offer.secret, 'base64');
  if (secret.length !== 32 || !/^cp-[0-9a-f]{24}$/.test(offer.service))
    throw new CliError(`${node} offered a malformed copy channel`);
  let deliver: ((chunk: Buffer) => void) | undefined;
  const onread = {
    buffer: Buffer.allocUnsafe(RECEIVE_READ_BYTES),
    callback: (n: number, buf: Uint8Array): boolean => {
      const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
      // The SOCKS handshake (and a socket without a sink) reads `data` events, of a copy.
      if (deliver) deliver(chunk);
      else socket.emit('data', Buffer.from(chunk));
      return true;
    },
  };
  const socket = connect({ port: route.port, host: route.host, allowHalfOpen: true, noDelay: true, onread });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const closed = new Promise<never>((_, reject) =>
      socket.once('close', () => reject(new Error('closed during the handshake'))),
    );
    closed.catch(() => {});
    const rest = await Promise.race([
      socksConnect(socket, `${offer.service}.${node}`, 1, node, 'cp'),
      closed,
    ]);
    if (rest.length) throw new Error('unexpected bytes before the secret');
  } catch (err) {
    socket.destroy();
    throw new CliError(
      `cannot open the copy channel to ${node} (${(err as Error).message}); it may have expired or been taken by another connection`,
    );
  }
  socket.removeAllListeners('close');
  deliver = sink;
  socket.write(secret);
  return socket;
}

/** Resolves when `socket` has closed; rejects when it broke (a reset before its end). */
export function settled(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    let ended = false;
    socket.once('end', () => {
      ended = true;
    });
    socket.once('error', (err) => reject(new CliError(`the copy connection broke: ${err.message}`)));
    socket.once('close', () =>
      ended || socket.writableFinished ? resolve() : reject(new CliError('the copy connection broke')),
    );
  });
}

/** Sends `local` from `from` over a node's channel, hashing and counting as it goes. */
export async function sendRaw(
  route: SocksRoute,
  node: string,
  offer: ChannelOffer,
  local: string,
  from: number,
  h: Hash,
  bar: { add(n: number): void },
): Promise<void> {
  const socket = await openChannel(route, node, offer);
  const over = settled(socket);
  over.catch(() => {});
  const file = await open(local, 'r');
  try {
    // A few 1 MiB buffers in turn, each read into again once the socket has written it out (its
    // write callback): a fresh buffer per read (createReadStream) cost ~0.9 s of allocation and
    // garbage collection per 512 MiB (CPU profile). At most DIRECT_BUFFERS MiB wait in the socket.
    const free = Array.from({ length: DIRECT_BUFFERS }, () => Buffer.allocUnsafe(1 << 20));
    let returned: (() => void) | undefined;
    for (let pos = from; ; ) {
      while (free.length === 0) {
        await Promise.race([new Promise<void>((r) => (returned = r)), over]);
        if (socket.destroyed && free.length === 0) {
          await over;
          throw new CliError('the copy connection closed before the whole file was sent');
        }
      }
      if (socket.destroyed) break; // over says how
      const buf = free.pop()!;
      const { bytesRead } = await file.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      const c = buf.subarray(0, bytesRead);
      h.update(c);
      bar.add(bytesRead);
      socket.write(c, () => {
        free.push(buf);
        returned?.();
      });
    }
  } finally {
    await file.close();
  }
  socket.end();
  await over;
}

/** Receives a node's channel into the open partial file `fd`. */
export async function receiveRaw(
  route: SocksRoute,
  node: string,
  offer: ChannelOffer,
  fd: FileHandle,
  local: string,
  h: Hash,
  bar: { add(n: number): void },
): Promise<void> {
  // Hashed and written as each read comes, into the page cache (a synchronous write: this
  // process has nothing else to do meanwhile, and the socket is not read until it is done, so
  // the disk paces the node). A chunk lives in the read buffer: it is consumed at once.
  let failed: Error | undefined;
  let socket: Socket | undefined;
  const sink = (c: Buffer) => {
    if (failed) return;
    try {
      for (let at = 0; at < c.length; ) at += writeSync(fd.fd, c, at, c.length - at);
    } catch (err) {
      failed = err as Error;
      socket?.destroy();
      return;
    }
    h.update(c);
    bar.add(c.length);
  };
  const s = await openChannel(route, node, offer, sink);
  socket = s;
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.once('end', resolve);
      s.once('close', () => reject(failed ?? new Error('the connection closed before its end')));
      // 'end' comes once the stream is read: with the reads going to the sink, nothing is left.
      s.resume();
    });
    if (failed) throw failed;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError(
      e.code === 'ENOSPC' ? `${local}: no space left on this disk` : `${local}: the copy broke: ${e.message}`,
    );
  } finally {
    // The node's end came (or the copy failed): nothing more to say on it; the sha256 decides.
    s.destroy();
  }
}
