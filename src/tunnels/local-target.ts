/**
 * The local end of a tunnel: connecting to an exposed port on loopback or to a service served
 * in-process (in-process.ts), and joining two local ends when a tunnel's target is this very
 * node.
 */
import { connect, type Socket } from 'node:net';
import { letGoOfClosed } from '../runtime/closed-socket.ts';
import type { SharedBufferReader } from '../runtime/socket-reader.ts';
import type { OpenedTunnel } from './carriers/carrier.ts';
import { LOOPBACK, TARGET_CONNECT_TIMEOUT_MS } from './constants.ts';
import { TargetRefusedError } from './errors.ts';
import { connectInProcess, type LocalSocket, type LocalTarget } from './in-process.ts';
import type { TunnelLedger } from './ledger.ts';

/**
 * Connects to a tunnel's target on this node. A `reader` applies to a port only (the socket
 * reads into its shared buffer); an in-process end emits `data` like a plain socket. A refusal
 * by an in-process service becomes TargetRefusedError, as a refused port does.
 */
export async function connectTarget(target: LocalTarget, reader?: SharedBufferReader): Promise<LocalSocket> {
  if (typeof target === 'number') return connectLocal(target, reader);
  try {
    return connectInProcess(target);
  } catch (err) {
    throw new TargetRefusedError(`service ${target.name}`, (err as Error).message);
  }
}

/** How a target is named in the ledger's log lines. */
export function targetField(target: LocalTarget): { port: number } | { service: string } {
  return typeof target === 'number' ? { port: target } : { service: target.name };
}

/**
 * Connects to an exposed port on loopback; refusal and timeout become TargetRefusedError. With
 * a `reader`, the socket reads into the shared buffer (src/runtime/socket-reader.ts) and emits no `data`.
 */
export function connectLocal(port: number, reader?: SharedBufferReader): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: LOOPBACK,
      port,
      allowHalfOpen: true,
      noDelay: true,
      ...(reader ? { onread: reader.onread } : {}),
    });
    if (reader) reader.onOverflow = (err) => socket.destroy(err);
    const t = setTimeout(() => {
      socket.destroy();
      reject(new TargetRefusedError(`port ${port}`, 'timed out'));
    }, TARGET_CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(t);
      socket.removeAllListeners('error');
      // Errors are handled by whoever joins the socket; this keeps one in between from crashing.
      socket.on('error', () => {});
      // No TCP keepalive: over loopback the kernel itself tells when the other end goes away, and
      // its four setsockopt calls came before the tunnel's first bytes reached the target.
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(t);
      socket.destroy();
      reject(new TargetRefusedError(`port ${port}`, err.code));
    });
  });
}

/** A tunnel whose target is this very node: the client socket joined to the exposed `to`. */
export async function openLocal(to: LocalTarget, ledger: TunnelLedger): Promise<OpenedTunnel> {
  const target = await connectTarget(to);
  return {
    path: 'local',
    carrier: 'local',
    attach: async (socket, firstBytes) => {
      const untrack = ledger.track(socket, target);
      await pipeLocal(socket, target, firstBytes);
      untrack();
    },
    abort: () => target.destroy(),
  };
}

/** Pipes two local sockets into each other (half-close and resets passed on); resolves when both closed. */
function pipeLocal(socket: Socket, target: LocalSocket, firstBytes?: Uint8Array): Promise<void> {
  return new Promise<void>((resolve) => {
    if (firstBytes?.length) target.write(firstBytes);
    let closed = 0;
    const onClose = () => {
      if (++closed === 2) resolve();
    };
    for (const [a, b] of [
      [socket, target],
      [target, socket],
    ] as const) {
      a.pipe(b);
      a.on('error', () => b.resetAndDestroy());
      a.on('close', () => {
        letGoOfClosed(a);
        onClose();
      });
    }
  });
}
