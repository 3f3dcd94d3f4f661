/**
 * The server end of the stream carrier: after the tunnel header arrived on a
 * `/plexus/tcp/1.0.0` stream (server.ts reads it), connect to the exposed local port (or the in-process service), answer,
 * and splice the stream to it; or refuse with the reason.
 */
import type { Stream } from '@libp2p/interface';
import type { Uint8ArrayList } from 'uint8arraylist';
import { PlexusError } from '../../../core/errors.ts';
import type { Logger } from '../../../logging/index.ts';
import { STREAM_HIGH_WATER_BYTES, STREAM_MAX_READ_BUFFER_BYTES } from '../../constants.ts';
import { parseRequest, refusalOf, type TunnelRequest } from '../../handshake.ts';
import type { LocalSocket, LocalTarget } from '../../in-process.ts';
import type { TunnelLedger } from '../../ledger.ts';
import { connectTarget, targetField } from '../../local-target.ts';
import { encodeFrame } from './frames.ts';
import { splice } from './splice.ts';

/** What the stream carrier's server end uses. */
export interface StreamServeContext {
  ledger: TunnelLedger;
  /** Where a request may go on this node (a port, or in-process); throws when it is not exposed. */
  targetFor(req: TunnelRequest): LocalTarget;
  /** Coalesce socket reads up to this many bytes per stream write. */
  coalesceBytes: number;
  logger: Logger;
}

/** Serves one tunnel whose header (and the bytes behind it) came in on `stream`. */
export async function serveStream(
  stream: Stream,
  peer: string,
  header: { value: unknown; rest: Uint8ArrayList },
  c: StreamServeContext,
): Promise<void> {
  let release: () => void;
  try {
    release = c.ledger.acquire(peer);
  } catch (err) {
    c.ledger.counts.refused++;
    await refuseStream(stream, err as PlexusError);
    return;
  }
  c.ledger.counts.inbound++;
  let socket: LocalSocket | undefined;
  try {
    const req = parseRequest(header.value);
    const target = c.targetFor(req);
    socket = await connectTarget(target);
    stream.send(encodeFrame({ ok: true }));
    c.ledger.counts.opened++;
    const untrack = c.ledger.track(socket, stream, peer);
    const r = await splice(socket, stream, {
      coalesceBytes: c.coalesceBytes,
      initial: header.rest,
      maxReadBufferBytes: STREAM_MAX_READ_BUFFER_BYTES,
      highWaterBytes: STREAM_HIGH_WATER_BYTES,
    });
    untrack();
    c.ledger.spliced(r, { peer, ...targetField(target) });
  } catch (err) {
    socket?.destroy();
    c.ledger.counts.refused++;
    if (!(err instanceof PlexusError)) c.logger.warn({ err, peer }, 'tunnel failed');
    await refuseStream(stream, err as Error);
  } finally {
    c.ledger.counts.inbound--;
    release();
  }
}

/** Answers with the refusal for `err` and drops the stream (and whatever followed the header). */
export async function refuseStream(stream: Stream, err: Error): Promise<void> {
  const body = refusalOf(err);
  try {
    if (stream.writeStatus === 'writable') {
      stream.send(encodeFrame(body));
      await stream.close({ signal: AbortSignal.timeout(2000) });
    }
    // Anything the opener already sent after its header is dropped with the stream.
    stream.abort(new Error('refused'));
  } catch {
    stream.abort(new Error('refused'));
  }
}
