/**
 * Joins a local TCP socket and a tunnel's data connection (docs/tunnels.md, data connections),
 * both ways, with the semantics of carriers/stream/splice.ts for libp2p streams:
 * - local bytes go out as frames (frames.ts) as they are read, inside TLS;
 * - backpressure is TCP's own: a socket whose write buffer is full pauses the one feeding it
 *   until it drains, so the kernel's windows hold the sender back end to end;
 * - half-close: a local FIN becomes a FIN frame and a TLS close; a FIN frame ends the local
 *   socket's write side; the other direction keeps flowing;
 * - bytes that TLS does not authenticate, a TCP end without a FIN frame (a cut, not an end),
 *   or an error on either side reset both;
 * - with `reuse` (both ends agreed in the tunnel's handshake, open.ts and serve.ts), the FIN frames
 *   end the tunnel but not the TLS connection: once both have crossed, the data connection is
 *   freed for the next tunnel (`reusable`), so a new tunnel costs no TLS handshake, ticket or TCP
 *   connect. Nothing the local socket does after that touches it.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { letGoOfClosed } from '../../../runtime/closed-socket.ts';
import { type SocketReader, userBufferReader } from '../../../runtime/socket-reader.ts';
import { TunnelProtocolError } from '../../errors.ts';
import { consumingReader, InProcessEnd, type LocalSocket } from '../../in-process.ts';
import type { SpliceResult } from '../carrier.ts';
import { waitForHandshake } from '../handshake-wait.ts';
import { FrameWriter } from './frame-writer.ts';
import { type FramePiece, FrameReader } from './frames.ts';
import { LocalWriter } from './local-writer.ts';

/** TLS 1.3's largest record: a decrypted chunk this size is likely followed by more. */
const TLS_RECORD_BYTES = 16 * 1024;
/** Decrypted bytes gathered for one write to the local socket, at most. */
const BATCH_MAX_BYTES = 256 * 1024;

/** A data connection after its TLS handshake, and the frames coming in on it. */
export interface DataConnection {
  socket: TLSSocket;
  /** The TCP socket under the TLS: resetting it is how a reset reaches the far end. */
  raw: Socket;
  /** How its incoming bytes are taken (see src/runtime/socket-reader.ts). */
  reader: SocketReader;
  frames: FrameReader;
  /** Through a relay's splice (spliced/), not straight to the peer's data listener. */
  spliced?: boolean;
}

/** Wraps an established TLS socket over `raw` as a data connection. */
export function dataConnection(socket: TLSSocket, raw: Socket): DataConnection {
  return { socket, raw, reader: userBufferReader(socket, true), frames: new FrameReader() };
}

/** Closes a data connection: TLS socket and TCP socket (the far end sees a cut, not an end). */
export function closeData(data: DataConnection): void {
  data.socket.destroy();
  data.raw.destroy();
}

/** Resets a data connection (a TLS socket itself cannot send a TCP reset). */
export function resetData(data: DataConnection): void {
  if (!data.raw.destroyed) data.raw.resetAndDestroy();
  data.socket.destroy();
}

/** How a splice ended, and whether its data connection may carry the next tunnel. */
export interface DataSpliceResult extends SpliceResult {
  /** Both FIN frames crossed on a connection kept open (`reuse`): free for the next tunnel. */
  reusable: boolean;
}

/**
 * Pumps bytes between `local` and the data connection until both are closed (with `reuse`: until
 * `local` is closed and both FIN frames crossed). Never rejects.
 */
export function spliceData(
  local: LocalSocket,
  data: DataConnection,
  opts: {
    initial?: FramePiece[];
    firstBytes?: Uint8Array;
    localReader?: SocketReader;
    reuse?: boolean;
    /**
     * Reuse: called once both FIN frames crossed, when the data connection is free for the next
     * tunnel. That may be well before `local` closes (an app that holds its socket open after
     * its end), and the next tunnel must not wait for it.
     */
    onFree?: () => void;
  } = {},
): Promise<DataSpliceResult> {
  const { socket: remote, frames } = data;
  const reuse = opts.reuse === true;
  // An in-process end hands its chunks over as they are written, and this side is done with each
  // at once (it frames it into TLS or stages a copy): its writer may give bytes it reuses.
  const localReader =
    opts.localReader ?? (local instanceof InProcessEnd ? consumingReader(local) : userBufferReader(local));
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    let clean = true;
    let error: string | undefined;
    let localClosed = local.destroyed;
    let remoteClosed = remote.destroyed;
    let localEnded = false;
    let done = false;
    /** Reuse: both FIN frames crossed and the data connection is detached from this tunnel. */
    let freed = false;

    const finish = () => {
      if (done || !localClosed || !(remoteClosed || freed)) return;
      done = true;
      const reusable = freed && !remote.destroyed;
      resolve({ sent, received, clean, reusable, ...(error ? { error } : {}) });
    };
    const failBoth = (why: string) => {
      clean = false;
      error ??= why;
      if (!local.destroyed) local.resetAndDestroy();
      if (!remote.destroyed && !freed) resetData(data);
    };

    // ---- local → remote -----------------------------------------------------------------
    // Backpressure: the writer pauses the local socket while its frames wait for TLS.
    const writer = new FrameWriter(remote, (go) => {
      if (local.destroyed) return;
      if (go) local.resume();
      else local.pause();
    });
    const send = (chunk: Uint8Array) => {
      if (remote.destroyed || remote.writableEnded) return;
      sent += chunk.byteLength;
      writer.send(chunk);
    };
    if (opts.firstBytes?.byteLength) send(opts.firstBytes);
    localReader.set(send);
    const onLocalEnd = () => {
      if (localEnded) return;
      localEnded = true;
      writer.end(reuse);
      free();
    };
    local.on('end', onLocalEnd);
    if (local.readableEnded) queueMicrotask(onLocalEnd);
    local.on('error', (err) => failBoth(`socket: ${err.message}`));
    local.on('close', (hadError?: boolean) => {
      localClosed = true;
      // Closed without its FIN (an error, or destroyed while the agent stops): the far end must
      // see a reset, never a clean but truncated end.
      if (hadError || !localEnded) failBoth('socket: the local socket closed abruptly');
      finish();
      letGoOfClosed(local, localReader);
    });
    local.resume();

    // ---- remote → local -----------------------------------------------------------------
    // Decrypted records come one at a time, in the shared TLS read buffer (src/runtime/socket-reader.ts):
    // the writer copies them into reused buffers while its last write to the local socket is
    // in flight, and pauses the data connection while too much waits. Once the FIN frame came
    // the data connection is no longer this direction's to pause (with `reuse`, the next
    // tunnel's).
    let finished = false;
    const toLocal = new LocalWriter(local, (go) => {
      if (finished || remote.destroyed) return;
      if (go) remote.resume();
      else remote.pause();
    });
    // Written when a short record ends the far end's write, when BATCH_MAX_BYTES wait, or once
    // this turn of the event loop's reads is done: a TCP read's records go out together.
    let flushQueued = false;
    const queuedFlush = () => {
      flushQueued = false;
      toLocal.flush();
    };
    const deliver = (pieces: FramePiece[]) => {
      for (const p of pieces) {
        if (local.destroyed) return;
        if ('fin' in p) {
          const paused = toLocal.paused;
          finished = true;
          toLocal.end();
          // What is left to read is only the TLS close, and it must be read for the
          // connection to close.
          if (paused && !remote.destroyed) remote.resume();
          free();
          continue;
        }
        received += p.bytes.byteLength;
        toLocal.push(p.bytes);
      }
    };
    if (opts.initial?.length) {
      deliver(opts.initial);
      toLocal.flush();
    }
    data.reader.set((chunk: Buffer) => {
      let pieces: FramePiece[];
      try {
        pieces = frames.push(chunk);
      } catch (err) {
        failBoth(`stream: ${(err as Error).message}`);
        return;
      }
      deliver(pieces);
      if (chunk.byteLength < TLS_RECORD_BYTES || toLocal.stagedBytes >= BATCH_MAX_BYTES) toLocal.flush();
      else if (!flushQueued && toLocal.stagedBytes > 0) {
        flushQueued = true;
        setImmediate(queuedFlush);
      }
    });
    const onRemoteEnd = () => {
      // An end without the FIN frame: the connection was cut, so pass it on as a reset.
      if (!frames.finished) failBoth('stream: the data connection ended without its FIN frame');
    };
    const onRemoteError = (err: Error) => failBoth(`stream: ${err.message}`);
    const onRemoteClose = () => {
      remoteClosed = true;
      if (!frames.finished || !localEnded) failBoth(error ?? 'stream: the data connection closed early');
      finish();
    };
    remote.on('end', onRemoteEnd);
    remote.on('error', onRemoteError);
    remote.on('close', onRemoteClose);
    // Reuse: once both FIN frames crossed, the tunnel lets go of the data connection; what comes
    // on it next (the next tunnel's header) is kept by its reader for whoever takes it.
    function free() {
      if (!reuse || freed || !localEnded || !frames.finished || remote.destroyed) return;
      freed = true;
      data.reader.set(undefined);
      remote.off('end', onRemoteEnd);
      remote.off('error', onRemoteError);
      remote.off('close', onRemoteClose);
      opts.onFree?.();
      finish();
    }
    remote.resume();
    if (remote.destroyed) failBoth('stream: the data connection closed early');
  });
}

/**
 * Reads the first frame of a data connection (the tunnel header, or the server's reply) as
 * JSON of at most `maxBytes`. Pieces that came in behind it are returned as `rest`, and the
 * socket is left paused for spliceData to take over.
 */
export function readFirstFrame(
  data: DataConnection,
  signal: AbortSignal,
  maxBytes: number,
): Promise<{ value: unknown; rest: FramePiece[] }> {
  const { socket, frames } = data;
  return waitForHandshake<{ value: unknown; rest: FramePiece[] }>(signal, (wait) => {
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      let pieces: FramePiece[];
      try {
        pieces = frames.push(chunk);
      } catch (err) {
        return wait.fail(err as Error);
      }
      for (let i = 0; i < pieces.length; i++) {
        const p = pieces[i];
        if ('fin' in p || size + p.bytes.byteLength > maxBytes)
          return wait.fail(new TunnelProtocolError('BAD_FRAME', 'bad tunnel handshake frame', 'invalid'));
        // A view into a chunk that may be a shared read buffer: keep a copy.
        parts.push(Buffer.from(p.bytes));
        size += p.bytes.byteLength;
        if (!p.last) continue;
        let value: unknown;
        try {
          value = JSON.parse(Buffer.concat(parts).toString('utf8'));
        } catch {
          return wait.fail(
            new TunnelProtocolError('BAD_FRAME', 'tunnel handshake frame is not JSON', 'invalid'),
          );
        }
        const rest = pieces.slice(i + 1).map((r) => ('fin' in r ? r : { ...r, bytes: Buffer.from(r.bytes) }));
        return wait.done({ value, rest });
      }
    };
    // The sockets are half-open (allowHalfOpen): the far end letting go of a connection shows
    // as 'end', and 'close' only follows once this side ends too. An end before the frame means
    // it never comes: a reused connection the opener closed instead of keeping (its pool was
    // full) would otherwise hold its slot for the whole header wait.
    const onClose = () => wait.closed();
    socket.once('close', onClose);
    socket.once('end', onClose);
    data.reader.set(onData);
    if (!wait.settled) socket.resume();
    return () => {
      socket.pause();
      data.reader.set(undefined);
      socket.off('close', onClose);
      socket.off('end', onClose);
    };
  });
}
