/**
 * The client end of the stream carrier: a tunnel over a `/plexus/tcp/1.0.0` stream on the mesh
 * connection (a relayed link, or a direct one whose data port does not answer).
 */
import type { Connection, Stream } from '@libp2p/interface';
import type { Uint8ArrayList } from 'uint8arraylist';
import { MAX_REPLY_BYTES, STREAM_HIGH_WATER_BYTES, STREAM_MAX_READ_BUFFER_BYTES } from '../../constants.ts';
import { acceptReply } from '../../handshake.ts';
import type { TunnelLedger } from '../../ledger.ts';
import { isRelayed, type OpenedTunnel, type OpeningTunnel } from '../carrier.ts';
import { encodeFrame, readFrame } from './frames.ts';
import { splice } from './splice.ts';
import type { StreamPool } from './stream-pool.ts';

/** What the stream carrier's client end uses. */
export interface StreamOpenContext {
  ledger: TunnelLedger;
  /** Also negotiates the next stream to this peer ahead of use (not once the pool is stopped). */
  streams: StreamPool;
  /** Coalesce socket reads up to this many bytes per stream write. */
  coalesceBytes: number;
}

/** Sends the tunnel's request on a (pooled) stream and, unless optimistic, waits for the answer. */
export async function openOverStream(
  t: OpeningTunnel,
  conn: Connection,
  c: StreamOpenContext,
): Promise<OpenedTunnel> {
  const { member, sig } = t;
  // Reads the far side's answer; after it, the stream carries raw bytes.
  const answer = async (s: Stream) => {
    const { value, rest } = await readFrame(s, MAX_REPLY_BYTES, sig);
    acceptReply(value);
    c.ledger.counts.opened++;
    return rest;
  };
  let stream: Stream | undefined;
  let rest: Uint8ArrayList | undefined;
  try {
    stream = await c.streams.take(member.peerId, conn, sig);
    c.streams.refill(member.peerId, conn);
    stream.send(encodeFrame(t.req));
    if (!t.optimistic) rest = await answer(stream);
  } catch (err) {
    stream?.abort(err as Error);
    return t.fail(err);
  }
  const s = stream;
  return {
    path: isRelayed(conn) ? 'relayed' : 'direct',
    carrier: 'stream',
    attach: async (socket, firstBytes) => {
      const untrack = c.ledger.track(socket, s, member.peerId);
      /** Bytes sent before the answer (optimistic), which the splice does not count. */
      let earlySent = 0;
      try {
        if (rest === undefined) {
          // Optimistic: send what the client says while the answer is on its way.
          const early = (d: Buffer) => {
            earlySent += d.byteLength;
            if (s.writeStatus === 'writable' && !s.send(d)) socket.pause();
          };
          socket.on('data', early);
          try {
            rest = await answer(s);
          } catch (err) {
            untrack();
            s.abort(err as Error);
            return t.fail(err);
          } finally {
            socket.off('data', early);
          }
        }
        const r = await splice(socket, s, {
          coalesceBytes: c.coalesceBytes,
          initial: rest,
          firstBytes,
          maxReadBufferBytes: STREAM_MAX_READ_BUFFER_BYTES,
          highWaterBytes: STREAM_HIGH_WATER_BYTES,
        });
        c.ledger.spliced({ ...r, sent: r.sent + earlySent }, { node: member.name });
      } finally {
        untrack();
        t.done();
      }
    },
    abort: () => {
      s.abort(new Error('client went away'));
      t.done();
    },
  };
}
