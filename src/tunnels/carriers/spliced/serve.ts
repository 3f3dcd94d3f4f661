/**
 * The answers to splice requests on the mesh stream (wire.ts): a relay's to `{splice}` (make or
 * join rendezvous, relay.ts) and a target's to `{meet}` (join at the relay, dial it, and serve
 * the far member's TLS on that connection). Both run over `/plexus/tcp/1.0.0`, whose streams
 * only members can open.
 */
import { isIP } from 'node:net';
import type { Connection, Stream } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Logger } from '../../../logging/index.ts';
import { MAX_TICKET_REPLY_BYTES, OPEN_TIMEOUT_MS } from '../../constants.ts';
import { DataPathOffError, SpliceRefusedError, TunnelPeerUnreachableError } from '../../errors.ts';
import { isRelayed } from '../carrier.ts';
import type { DataListener } from '../data/listener.ts';
import { encodeFrame } from '../stream/frames.ts';
import { refuseStream } from '../stream/serve.ts';
import { type AskPeer, connectRelay, relayAddress } from './open.ts';
import type { SpliceRelay } from './relay.ts';
import { type MeetRequest, parseSpliceGrant, type SpliceRequest } from './wire.ts';

/** What answering splice requests needs. */
export interface SpliceServeContext {
  self: string;
  listener: DataListener | undefined;
  relay: SpliceRelay | undefined;
  isMember(peer: string): boolean;
  /** Open connections to a peer. */
  connections(peer: string): Connection[];
  /** A peer's known addresses (where a relay may be dialled). */
  addresses(peer: string): Promise<Multiaddr[]>;
  ask: AskPeer;
  logger: Logger;
}

async function reply(stream: Stream, body: unknown): Promise<void> {
  stream.send(encodeFrame(body));
  await stream.close({ signal: AbortSignal.timeout(OPEN_TIMEOUT_MS) });
}

/** Relay: makes rendezvous for `peer` (the asker) or joins it to those made with it. */
export async function serveSplice(
  stream: Stream,
  peer: string,
  req: SpliceRequest,
  c: SpliceServeContext,
): Promise<void> {
  try {
    const { listener, relay } = c;
    if (!listener || !relay) throw new DataPathOffError();
    const host = listener.host;
    // The members dial the splice port, which takes preambles only (listener.ts says why).
    const where = { port: listener.splicePort, ...(host && isIP(host) ? { host } : {}) };
    if ('count' in req) {
      const { ids, tickets } = relay.open(peer, req.peer, req.count, c.self);
      return await reply(stream, { ok: true, ...where, rendezvous: ids, tickets });
    }
    const tickets = relay.join(peer, req.peer, req.join);
    await reply(stream, { ok: true, ...where, rendezvous: req.join, tickets });
  } catch (err) {
    await refuseStream(stream, err as Error);
  }
}

/**
 * Target: `peer` asks to meet at a relay. Join the rendezvous there, answer with tickets of our
 * data listener (the TLS runs end to end, we are its server), then dial the relay once per
 * rendezvous and serve the TLS that comes through.
 */
export async function serveMeet(
  stream: Stream,
  peer: string,
  req: MeetRequest,
  c: SpliceServeContext,
): Promise<void> {
  const count = req.rendezvous.length;
  let dials: { host: string; port: number; tickets: { id: string; key: string }[] };
  try {
    const listener = c.listener;
    if (!listener) throw new DataPathOffError();
    if (req.relay === c.self || req.relay === peer || !c.isMember(req.relay))
      throw new SpliceRefusedError('the relay must be a third member');
    const relayConn = c.connections(req.relay).find((x) => x.status === 'open' && !isRelayed(x));
    if (!relayConn) throw new TunnelPeerUnreachableError(req.relay, 'no direct connection to the relay');
    const grant = parseSpliceGrant(
      await c.ask(
        relayConn,
        { splice: { peer, join: req.rendezvous } },
        MAX_TICKET_REPLY_BYTES,
        AbortSignal.timeout(OPEN_TIMEOUT_MS),
      ),
      count,
    );
    dials = { ...relayAddress(relayConn, grant, await c.addresses(req.relay)), tickets: grant.tickets };
    await reply(stream, { ok: true, tickets: listener.issue(peer, count) });
  } catch (err) {
    await refuseStream(stream, err as Error);
    return;
  }
  const listener = c.listener as DataListener;
  for (const ticket of dials.tickets)
    connectRelay(dials.host, dials.port, ticket).then(
      (raw) => listener.acceptSpliced(raw),
      (err: Error) =>
        c.logger.debug({ peer, relay: req.relay, err: err.message }, 'spliced data connection failed'),
    );
}
