/**
 * Joins a TCP socket and a libp2p stream, both ways, at close to raw TCP speed:
 * - socket reads that arrive in one event-loop turn are coalesced (up to `coalesceBytes`) into
 *   one `stream.send()`, since yamux and Noise cost per frame;
 * - backpressure end to end: the socket is paused while `send()` says the stream is full and
 *   resumed on its drain; the stream is paused (yamux stops granting window) while the socket's
 *   write buffer is full and resumed on the socket's drain;
 * - half-close: the socket's FIN closes the stream's write side and the stream's end ends the
 *   socket's write side; the other direction keeps flowing;
 * - an error or reset on either side resets the other (RST to the TCP peer, RST frame to yamux).
 */
import type { Stream } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';
import { streamPauser } from '../../../mesh/stream-pause.ts';
import { letGoOfClosed } from '../../../runtime/closed-socket.ts';
import type { LocalSocket } from '../../in-process.ts';
import type { SpliceResult } from '../carrier.ts';

/** Options of one splice. */
export interface SpliceOptions {
  /** Coalesce socket reads up to this many bytes per `stream.send()`. */
  coalesceBytes: number;
  /** Bytes already read from the stream (after the handshake) to write to the socket first. */
  initial?: Uint8ArrayList;
  /** Bytes already read from the socket (e.g. pipelined after a SOCKS request) to send first. */
  firstBytes?: Uint8Array;
  /**
   * The socket is paused while this much waits in the stream's write buffer (the far side has
   * not granted window yet, or the connection is saturated) and resumed below half of it.
   */
  highWaterBytes: number;
  /** Read buffer allowed on the stream while it is paused: at least one yamux window. */
  maxReadBufferBytes: number;
}

/** Pumps bytes between `socket` and `stream` until both are closed. Never rejects. */
export function splice(socket: LocalSocket, stream: Stream, opts: SpliceOptions): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    let clean = true;
    let error: string | undefined;
    let done = false;
    let socketClosed = false;
    let streamClosed = false;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let flushScheduled = false;
    let socketEnded = false;
    let streamPaused = false;

    // While paused, yamux may still deliver what the remote had in flight (up to a window).
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, opts.maxReadBufferBytes);
    socket.setNoDelay(true);

    const finish = () => {
      if (done || !socketClosed || !streamClosed) return;
      done = true;
      resolve({ sent, received, clean, ...(error ? { error } : {}) });
    };
    const failBoth = (err: Error) => {
      clean = false;
      error ??= `socket: ${err.message}`;
      if (!socket.destroyed) socket.resetAndDestroy();
      stream.abort(err);
    };

    // ---- socket → stream ------------------------------------------------------------------
    const flush = () => {
      flushScheduled = false;
      if (pendingBytes === 0 || stream.writeStatus !== 'writable') {
        pending = [];
        pendingBytes = 0;
        return;
      }
      const data = pending.length === 1 ? pending[0] : new Uint8ArrayList(...pending);
      sent += pendingBytes;
      pending = [];
      pendingBytes = 0;
      try {
        stream.send(data);
      } catch (err) {
        failBoth(err as Error);
        return;
      }
      // send() says false whenever the connection's socket has more than a few KiB queued,
      // which is nearly always under load; stopping there would run the pipe in lock-step.
      // What is bounded instead is what waits in this stream's own buffer.
      if (stream.writeBufferLength >= opts.highWaterBytes) {
        socket.pause();
        if (!waitingForRoom) {
          waitingForRoom = true;
          stream.addEventListener('drain', onStreamDrain);
        }
      }
    };
    // Not stream.onDrain(): its promise is never renewed, so after the first drain it resolves
    // at once, and every drain of the connection (any stream's) would let one more chunk in
    // until the stream's write buffer held the whole transfer (seen in the splice tests).
    let waitingForRoom = false;
    const onStreamDrain = () => {
      // The stream resumes sending in a microtask queued before this one; look after it.
      queueMicrotask(() => {
        if (stream.writeBufferLength >= opts.highWaterBytes / 2) return;
        waitingForRoom = false;
        stream.removeEventListener('drain', onStreamDrain);
        if (!socket.destroyed && !socketEnded) socket.resume();
      });
    };
    socket.on('data', (chunk: Buffer) => {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= opts.coalesceBytes) flush();
      else if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    });
    // Someone may have paused the socket explicitly (the SOCKS handshake reader); a 'data'
    // listener does not undo that.
    socket.resume();
    const onSocketEnd = () => {
      if (socketEnded) return;
      socketEnded = true;
      flush();
      if (stream.writeStatus === 'writable') stream.close().catch(() => {});
    };
    if (opts.firstBytes && opts.firstBytes.length > 0) {
      pending.push(opts.firstBytes);
      pendingBytes += opts.firstBytes.length;
      flush();
    }
    socket.on('end', onSocketEnd);
    // The FIN may have come while someone else was reading the socket (a SOCKS handshake).
    if (socket.readableEnded) queueMicrotask(onSocketEnd);
    socket.on('error', (err) => failBoth(err));
    socket.on('close', (hadError?: boolean) => {
      socketClosed = true;
      // Closed without its FIN (an error, or destroyed while the agent stops): reset the stream
      // so the far end sees a failure, never a clean but truncated end.
      if (hadError || !socketEnded) failBoth(new Error('the local socket closed abruptly'));
      finish();
      letGoOfClosed(socket);
    });

    // ---- stream → socket ------------------------------------------------------------------
    const write = (d: Uint8Array | Uint8ArrayList) => {
      if (socket.destroyed || socket.writableEnded) return;
      received += d.byteLength;
      let ok: boolean;
      if (d instanceof Uint8Array) ok = socket.write(d);
      else {
        socket.cork();
        ok = true;
        for (const b of d) ok = socket.write(b);
        socket.uncork();
      }
      if (!ok && !streamPaused && readable()) pauser.pause();
    };
    // A function, so that TypeScript does not keep a status it narrowed across resume().
    const readable = () => stream.readStatus === 'readable';
    // Paused while the socket is full, resumed on its 'drain'; a pause asked for while the
    // stream hands over what it held is made after (src/mesh/stream-pause.ts says why).
    const pauser = streamPauser(
      stream,
      () => {
        streamPaused = true;
        stream.pause();
        socket.once('drain', resumeStream);
      },
      // The hand-over may also have ended the stream (its FIN came while it was paused).
      () => readable() && !socket.destroyed,
    );
    const resumeStream = () => {
      streamPaused = false;
      pauser.resume();
    };
    if (opts.initial && opts.initial.byteLength > 0) write(opts.initial);
    stream.addEventListener('message', (evt) => write(evt.data));
    let streamEnded = false;
    // Only the far end's FIN may end the socket. 'end' also fires when the stream is aborted,
    // reset, or its connection goes away, and a FIN then would pass a cut off as complete.
    let remoteFin = stream.remoteWriteStatus === 'closed' && stream.status === 'open';
    stream.addEventListener('remoteCloseWrite', () => {
      remoteFin = true;
    });
    const endSocket = () => {
      if (!remoteFin) return;
      streamEnded = true;
      if (!socket.destroyed && !socket.writableEnded) socket.end();
    };
    stream.addEventListener('end', endSocket);
    if (stream.readableEnded) endSocket();
    stream.addEventListener('close', (evt) => {
      streamClosed = true;
      // A clean close needs both FINs; anything else (a reset, the connection going away) is
      // passed on as a reset so the client never mistakes a cut for a complete transfer.
      // Both FINs seen while we were paused: the buffered rest still arrives, then 'end'.
      const drainingRest =
        !evt.error && remoteFin && !streamEnded && socketEnded && stream.readBufferLength > 0;
      if (!drainingRest && (evt.error || !streamEnded || !socketEnded)) {
        clean = false;
        error ??= `stream: ${evt.error?.message ?? 'closed before both ends finished'}`;
        if (!socket.destroyed) socket.resetAndDestroy();
      }
      finish();
    });
    if (stream.status !== 'open') {
      streamClosed = true;
      if (!socket.destroyed) socket.resetAndDestroy();
    }
  });
}
