/**
 * The server end of the data carrier: a data connection redeemed its ticket in its TLS
 * handshake (listener.ts); read its header frame, connect to the exposed local port (or the
 * in-process service), answer, and splice the two; or refuse
 * with the reason. Served like a stream (carriers/stream/serve.ts), with the same refusals.
 */
import { PlexusError } from '../../../core/errors.ts';
import type { Logger } from '../../../logging/index.ts';
import { SharedBufferReader } from '../../../runtime/socket-reader.ts';
import { HEADER_WAIT_MS, MAX_HEADER_BYTES } from '../../constants.ts';
import { deadline } from '../../deadline.ts';
import { parseRequest, refusalOf, type TunnelRequest, wantsReuse } from '../../handshake.ts';
import type { LocalSocket, LocalTarget } from '../../in-process.ts';
import type { TunnelLedger } from '../../ledger.ts';
import { connectTarget, targetField } from '../../local-target.ts';
import { endFrames, type FramePiece, FrameReader, writeFrame } from './frames.ts';
import type { RedeemedTicket } from './listener.ts';
import { type DataConnection, readFirstFrame, resetData, spliceData } from './splice.ts';

/** What the data carrier's server end uses. */
export interface DataServeContext {
  ledger: TunnelLedger;
  /** Where a request may go on this node (a port, or in-process); throws when it is not exposed. */
  targetFor(req: TunnelRequest): LocalTarget;
  logger: Logger;
}

/** Serves one data connection of a member, once its TLS handshake is done. */
export async function serveData(
  ticket: RedeemedTicket,
  data: DataConnection,
  c: DataServeContext,
): Promise<void> {
  // A connection both ends reuse (splice.ts) serves one tunnel after another, each with the
  // same header wait, limits and refusals as the first.
  while (await serveOne(ticket.peer, data, c)) data.frames = new FrameReader();
}

/** Serves one tunnel on `data`; true when the connection is free for the next one. */
async function serveOne(peer: string, data: DataConnection, c: DataServeContext): Promise<boolean> {
  const { socket, raw } = data;
  // A pooled connection may wait a while for its header; it is tracked so that stopping the
  // agent or revoking the peer closes it.
  const untrackIdle = c.ledger.track(raw, undefined, peer);
  let header: { value: unknown; rest: FramePiece[] };
  c.ledger.dataWaiting++;
  const limit = deadline(HEADER_WAIT_MS);
  try {
    header = await readFirstFrame(data, limit.signal, MAX_HEADER_BYTES);
  } catch {
    resetData(data);
    return false;
  } finally {
    limit.clear();
    c.ledger.dataWaiting--;
    untrackIdle();
  }
  const answer = (body: unknown) => writeFrame(socket, Buffer.from(JSON.stringify(body)));
  const refuse = (err: unknown) => {
    answer(refusalOf(err));
    endFrames(socket);
    // Whatever the opener already sent behind its header is dropped with the connection.
    setTimeout(() => socket.destroy(), 2000).unref();
  };
  let release: () => void;
  try {
    release = c.ledger.acquire(peer);
  } catch (err) {
    c.ledger.counts.refused++;
    refuse(err);
    return false;
  }
  c.ledger.counts.inbound++;
  let target: LocalSocket | undefined;
  let handedOff = false;
  try {
    const to = c.targetFor(parseRequest(header.value));
    // A port's socket reads into the shared buffer; an in-process end hands over its Buffers.
    const targetReader = typeof to === 'number' ? new SharedBufferReader() : undefined;
    target = await connectTarget(to, targetReader);
    const reuse = wantsReuse(header.value);
    const untrack = c.ledger.track(target, raw, peer);
    // The next header may come as soon as the connection is free, before this tunnel's target
    // socket has closed: the tunnel's own accounting goes on in the background.
    handedOff = true;
    const served = new Promise<boolean>((resolve) => {
      // The splice writes the opener's first bytes (those that came with its header) to the
      // target at once: the target's answer is what the opener waits for, the reply is not (an
      // opener writes the client's bytes without waiting for it). Nothing goes back to the
      // opener before the reply below: the target's bytes come on a later turn of the loop.
      void spliceData(target as LocalSocket, data, {
        initial: header.rest,
        ...(targetReader ? { localReader: targetReader } : {}),
        reuse,
        onFree: () => resolve(true),
      }).then((r) => {
        untrack();
        c.ledger.spliced(r, { peer, ...targetField(to), carrier: 'data' });
        c.ledger.counts.inbound--;
        release();
        resolve(false);
      });
    });
    answer(reuse ? { ok: true, reuse: true } : { ok: true });
    c.ledger.counts.opened++;
    c.ledger.counts.openedData++;
    return await served;
  } catch (err) {
    target?.destroy();
    c.ledger.counts.refused++;
    if (!(err instanceof PlexusError)) c.logger.warn({ err, peer }, 'tunnel failed');
    refuse(err);
    return false;
  } finally {
    if (!handedOff) {
      c.ledger.counts.inbound--;
      release();
    }
  }
}
