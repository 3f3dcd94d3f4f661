/**
 * The client end of the data carrier: a tunnel over a data connection of its own (a direct link
 * whose data port answers). The request is the first frame, the far side's reply the first
 * frame back; then frames carry the bytes inside TLS (splice.ts).
 */
import { PlexusError } from '../../../core/errors.ts';
import { MAX_REPLY_BYTES } from '../../constants.ts';
import { TunnelProtocolError } from '../../errors.ts';
import { acceptReply, wantsReuse } from '../../handshake.ts';
import type { TunnelLedger } from '../../ledger.ts';
import type { OpenedTunnel, OpeningTunnel } from '../carrier.ts';
import { type FramePiece, FrameReader, writeFrame } from './frames.ts';
import { closeData, type DataConnection, readFirstFrame, spliceData } from './splice.ts';

/** Client bytes kept while a data connection's answer is on its way, to resend over the stream. */
const MAX_EARLY_KEPT_BYTES = 1024 * 1024;

/** What the data carrier's client end uses. */
export interface DataOpenContext {
  ledger: TunnelLedger;
  /** Opens the same tunnel over the mesh stream instead (the data connection died early). */
  overStream(): Promise<OpenedTunnel>;
  /** Takes back a data connection the tunnel is done with, both ends having kept it (splice.ts). */
  giveBack(data: DataConnection): void;
}

/** Sends the tunnel's request on `data` and, unless optimistic, waits for the answer. */
export async function openOverData(
  t: OpeningTunnel,
  data: DataConnection,
  c: DataOpenContext,
): Promise<OpenedTunnel> {
  const { member, sig } = t;
  /** The far side agreed to keep the connection for our next tunnel (it echoed `reuse`). */
  let reuse = false;
  const answer = async () => {
    const { value, rest } = await readFirstFrame(data, sig, MAX_REPLY_BYTES);
    acceptReply(value);
    t.opened();
    reuse = wantsReuse(value);
    c.ledger.counts.opened++;
    c.ledger.counts.openedData++;
    if (data.spliced) c.ledger.counts.openedSpliced++;
    return rest;
  };
  // A data connection that dies before the far side answers (its agent restarted, say, while
  // the connection sat in the pool) is not the target refusing: the tunnel goes over the mesh
  // stream instead, and the client never notices.
  const fallsBack = (err: unknown) =>
    !sig.aborted && !(err instanceof PlexusError && !(err instanceof TunnelProtocolError));
  let rest: FramePiece[] | undefined;
  // Optimistic, the header waits (corked) for the client's first bytes, so that both leave in one
  // TLS record and one TCP segment, and the far side has them in hand when its target connects.
  // It waits at most until the event loop has polled once more (the second setImmediate runs
  // after that poll): a client that speaks first has written by then, its bytes read in that
  // poll; for a target that speaks first, the header leaves one turn of the loop later.
  let corked = false;
  const sendHeader = () => {
    if (!corked) return;
    corked = false;
    data.socket.uncork();
  };
  try {
    if (t.optimistic) {
      data.socket.cork();
      corked = true;
      setImmediate(() => setImmediate(sendHeader));
    }
    writeFrame(data.socket, Buffer.from(JSON.stringify({ ...t.req, reuse: true })));
    if (!t.optimistic) rest = await answer();
  } catch (err) {
    closeData(data);
    if (fallsBack(err)) return c.overStream();
    return t.fail(err);
  }
  const carrier = data.spliced ? 'spliced' : 'data';
  return {
    path: data.spliced ? 'relayed' : 'direct',
    carrier,
    attach: async (socket, firstBytes) => {
      const untrack = c.ledger.track(socket, data.raw, member.peerId);
      /** Bytes sent before the answer (optimistic), which the splice does not count. */
      let earlySent = 0;
      try {
        if (rest === undefined) {
          // Optimistic: send what the client says while the answer is on its way, and keep a
          // copy (bounded) to send again over the stream if this connection turns out dead.
          const kept: Buffer[] = [];
          let keptBytes = 0;
          const early = (d: Buffer) => {
            earlySent += d.byteLength;
            keptBytes += d.byteLength;
            if (keptBytes <= MAX_EARLY_KEPT_BYTES) kept.push(d);
            const ok = writeFrame(data.socket, d);
            sendHeader();
            if (!ok) socket.pause();
          };
          socket.on('data', early);
          try {
            rest = await answer();
          } catch (err) {
            untrack();
            closeData(data);
            if (!fallsBack(err) || keptBytes > MAX_EARLY_KEPT_BYTES) return t.fail(err);
            const again = await c.overStream();
            return again.attach(socket, Buffer.concat([...(firstBytes ? [firstBytes] : []), ...kept]));
          } finally {
            socket.off('data', early);
          }
        }
        const r = await spliceData(socket, data, {
          initial: rest,
          firstBytes,
          reuse,
          // Free as soon as both FIN frames crossed, whenever the client closes its socket.
          onFree: () => {
            data.frames = new FrameReader();
            c.giveBack(data);
          },
        });
        c.ledger.spliced({ ...r, sent: r.sent + earlySent }, { node: member.name, carrier });
      } finally {
        untrack();
        t.done();
      }
    },
    abort: () => {
      closeData(data);
      t.done();
    },
  };
}
