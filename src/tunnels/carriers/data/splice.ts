/**
 * Joins a local TCP socket and a tunnel's data connection (docs/tunnels.md, data connections),
 * both ways, with the semantics of carriers/stream/splice.ts for libp2p streams:
 * - local bytes are sealed into records as they are read, so a read of up to 64 KiB is one
 *   record and one vectored write;
 * - backpressure is TCP's own: a socket whose write buffer is full pauses the one feeding it
 *   until it drains, so the kernel's windows hold the sender back end to end;
 * - half-close: a local FIN becomes a FIN record and a TCP FIN; a FIN record ends the local
 *   socket's write side; the other direction keeps flowing;
 * - a record that does not authenticate, a TCP FIN without a FIN record (a cut, not an end), or
 *   an error on either side resets both.
 */
import type { Socket } from 'node:net';
import { TunnelProtocolError } from '../../errors.ts';
import type { SpliceResult } from '../carrier.ts';
import { waitForHandshake } from '../handshake-wait.ts';
import type { OpenedRecord, RecordOpener, RecordSealer } from './record-encryption.ts';
import { dataEventReader, type SocketReader } from './socket-reader.ts';

/** A data connection with its record state, after the handshake. */
export interface DataConnection {
  socket: Socket;
  /** How its incoming bytes are taken (see socket-reader.ts). */
  reader: SocketReader;
  sealer: RecordSealer;
  opener: RecordOpener;
}

/** Writes records' pieces as one vectored write; returns what `write` said about the buffer. */
export function writeRecords(socket: Socket, pieces: Buffer[]): boolean {
  if (socket.destroyed || socket.writableEnded) return false;
  let ok = true;
  socket.cork();
  for (const p of pieces) ok = socket.write(p);
  socket.uncork();
  return ok;
}

/** Pumps bytes between `local` and the data connection until both are closed. Never rejects. */
export function spliceData(
  local: Socket,
  data: DataConnection,
  opts: { initial?: OpenedRecord[]; firstBytes?: Uint8Array; localReader?: SocketReader } = {},
): Promise<SpliceResult> {
  const { socket: remote, sealer, opener } = data;
  const localReader = opts.localReader ?? dataEventReader(local);
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    let clean = true;
    let error: string | undefined;
    let localClosed = local.destroyed;
    let remoteClosed = remote.destroyed;
    let localEnded = false;
    let finSeen = false;
    let done = false;

    const finish = () => {
      if (done || !localClosed || !remoteClosed) return;
      done = true;
      resolve({ sent, received, clean, ...(error ? { error } : {}) });
    };
    const failBoth = (why: string) => {
      clean = false;
      error ??= why;
      if (!local.destroyed) local.resetAndDestroy();
      if (!remote.destroyed) remote.resetAndDestroy();
    };

    // ---- local → remote -----------------------------------------------------------------
    let waitingRemoteDrain = false;
    const send = (chunk: Uint8Array) => {
      if (remote.destroyed || remote.writableEnded) return;
      sent += chunk.byteLength;
      if (!writeRecords(remote, sealer.seal(chunk)) && !waitingRemoteDrain) {
        waitingRemoteDrain = true;
        local.pause();
        remote.once('drain', () => {
          waitingRemoteDrain = false;
          if (!local.destroyed) local.resume();
        });
      }
    };
    if (opts.firstBytes?.byteLength) send(opts.firstBytes);
    localReader.set(send);
    const onLocalEnd = () => {
      if (localEnded) return;
      localEnded = true;
      if (!remote.destroyed && !remote.writableEnded) {
        writeRecords(remote, sealer.fin());
        remote.end();
      }
    };
    local.on('end', onLocalEnd);
    if (local.readableEnded) queueMicrotask(onLocalEnd);
    local.on('error', (err) => failBoth(`socket: ${err.message}`));
    local.on('close', (hadError) => {
      localClosed = true;
      // Closed without its FIN (an error, or destroyed while the agent stops): the far end must
      // see a reset, never a clean but truncated end.
      if (hadError || !localEnded) failBoth('socket: the local socket closed abruptly');
      finish();
    });
    local.resume();

    // ---- remote → local -----------------------------------------------------------------
    let waitingLocalDrain = false;
    const deliver = (records: OpenedRecord[]) => {
      for (const r of records) {
        if (local.destroyed) return;
        let ok = true;
        if (r.parts.length > 0) {
          local.cork();
          for (const p of r.parts) {
            received += p.byteLength;
            ok = local.write(p);
          }
          local.uncork();
        }
        if (r.fin) {
          finSeen = true;
          if (!local.writableEnded) local.end();
          // An ended socket emits no more 'drain': what is left to read is only the TCP FIN,
          // and it must be read for the connection to close.
          ok = true;
          if (waitingLocalDrain) {
            waitingLocalDrain = false;
            remote.resume();
          }
        }
        if (!ok && !waitingLocalDrain) {
          waitingLocalDrain = true;
          remote.pause();
          local.once('drain', () => {
            if (!waitingLocalDrain) return;
            waitingLocalDrain = false;
            if (!remote.destroyed) remote.resume();
          });
        }
      }
    };
    if (opts.initial?.length) deliver(opts.initial);
    data.reader.set((chunk: Buffer) => {
      let records: OpenedRecord[];
      try {
        records = opener.push(chunk);
      } catch (err) {
        failBoth(`stream: ${(err as Error).message}`);
        return;
      }
      deliver(records);
    });
    remote.on('end', () => {
      // TCP FIN without the FIN record: the connection was cut, so pass it on as a reset.
      if (!finSeen) failBoth('stream: the data connection ended without its FIN record');
    });
    remote.on('error', (err) => failBoth(`stream: ${err.message}`));
    remote.on('close', () => {
      remoteClosed = true;
      if (!finSeen || !localEnded) failBoth(error ?? 'stream: the data connection closed early');
      finish();
    });
    remote.resume();
    if (remote.destroyed) failBoth('stream: the data connection closed early');
  });
}

/**
 * Reads the first record of a data connection (the tunnel header, or the server's reply) as
 * JSON of at most `maxBytes`. Records that came in behind it are returned as `rest`, and the
 * socket is left paused for spliceData to take over.
 */
export function readFirstRecord(
  data: DataConnection,
  signal: AbortSignal,
  maxBytes: number,
  early?: Buffer,
): Promise<{ value: unknown; rest: OpenedRecord[] }> {
  const { socket, opener } = data;
  return waitForHandshake<{ value: unknown; rest: OpenedRecord[] }>(signal, (wait) => {
    const onData = (chunk: Buffer) => {
      let records: OpenedRecord[];
      try {
        records = opener.push(chunk);
      } catch (err) {
        return wait.fail(err as Error);
      }
      if (records.length === 0) return;
      const [first, ...rest] = records;
      const size = first.parts.reduce((n, p) => n + p.byteLength, 0);
      if (size > maxBytes || first.fin)
        return wait.fail(new TunnelProtocolError('BAD_FRAME', 'bad tunnel handshake record', 'invalid'));
      let value: unknown;
      try {
        value = JSON.parse(Buffer.concat(first.parts).toString('utf8'));
      } catch {
        return wait.fail(
          new TunnelProtocolError('BAD_FRAME', 'tunnel handshake record is not JSON', 'invalid'),
        );
      }
      wait.done({ value, rest });
    };
    const onClose = () => wait.closed();
    socket.once('close', onClose);
    // Bytes that came with the preamble go first; they may already hold the whole record.
    if (early?.byteLength) onData(early);
    if (!wait.settled) data.reader.set(onData);
    if (!wait.settled) socket.resume();
    return () => {
      socket.pause();
      data.reader.set(undefined);
      socket.off('close', onClose);
    };
  });
}
