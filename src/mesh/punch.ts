/**
 * TCP hole punching between two members behind NAT (`/plexus/punch/1.0.0`, issue 14), as DCUtR
 * does it, over their relayed connection. libp2p's own DCUtR is on too, but it never dials a
 * private address, and a plexus mesh lives on private ones, so in most fleets it never tries.
 *
 * One punch: the initiator picks a free local port and sends `{ip, port}`: its address as members
 * see it (its NAT gateway's, from dial-backs) and that port. The other side answers the same of
 * itself and at once dials the initiator's `ip:port` from its own port, as the libp2p responder;
 * the initiator dials back the same way as the libp2p initiator. A NAT that keeps the source
 * port of an outbound connection (Linux masquerade does, when it can) lets each side's SYN
 * through once the other side's SYN went out: a TCP simultaneous open, then pnet, Noise and
 * Yamux as on any mesh connection. A NAT that picks a new port per destination defeats it, and
 * the link stays relayed.
 *
 * Limits: members only, over a relayed connection only; each side dials nothing but an address
 * the other side published itself in its signed telemetry record (`nat.observed`), on a port of
 * 1024 or more, as a dial that must authenticate as that member; one answer per member per
 * PUNCH_ANSWER_MS; one punch per member at a time; frames of at most MAX_PUNCH_FRAME_BYTES.
 */
import { isIP } from 'node:net';
import type { Connection, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { toErrorBody } from '../core/errors.ts';
import * as z from '../core/zod.ts';
import type { Logger } from '../logging/index.ts';
import {
  MAX_PUNCH_FRAME_BYTES,
  PROTOCOL_TIMEOUT_MS,
  PUNCH_ANSWER_MS,
  PUNCH_DIAL_TIMEOUT_MS,
  PUNCH_FIRST_MS,
  PUNCH_MAX_BACKOFF_MS,
  PUNCH_PROTOCOL,
} from './constants.ts';
import { ProtocolError } from './errors.ts';
import { jsonChannel, replyAndClose } from './json-stream.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';
import type { TelemetryBus } from './telemetry.ts';

const offerSchema = z.strictObject({
  ip: z
    .string()
    .max(64)
    .refine((ip) => isIP(ip) !== 0, 'an IP address'),
  port: z.number().int().min(1024).max(65535),
});
const replySchema = z.union([
  offerSchema,
  z.object({ error: z.object({ code: z.string().max(64), message: z.string().max(512) }) }),
]);

/** What the hole puncher uses. */
export interface PuncherComponents {
  node: PlexusLibp2p;
  membership: Membership;
  telemetry: TelemetryBus;
  logger: Logger;
  /** This node's address as members see it (a NAT gateway's IP), if known. */
  ownObservedIp(): string | undefined;
  /** Whether this node believes it is behind NAT. */
  behindNat(): boolean;
  /** A connection a punch made (for `peers`: `punched`). */
  punched(conn: Connection): void;
}

/** The outcome of one punch. */
export interface PunchResult {
  ok: boolean;
  /** The direct address reached, or why it was not tried or failed. */
  detail: string;
}

const isRelayed = (c: Connection) => c.remoteAddr.toString().includes('/p2p-circuit');

/** IP addresses a member published as where its connections come from (`/ip4/1.2.3.4` → `1.2.3.4`). */
function publishedIps(telemetry: TelemetryBus, peerId: string): string[] {
  return (telemetry.latest(peerId)?.nat?.observed ?? []).map((a) => a.split('/')[2] ?? '').filter(Boolean);
}

/** What a punch dial uses of libp2p's internals (present at runtime, not in the public type). */
interface DialInternals {
  transportManager: {
    dialTransportForMultiaddr(
      ma: Multiaddr,
    ): { dial(ma: Multiaddr, o: Record<string, unknown>): Promise<Connection> } | undefined;
  };
  upgrader: { upgradeOutbound(maConn: { direction: string }, o: unknown): Promise<Connection> };
}

/**
 * Dials `ma` from `localPort` straight through the TCP transport: libp2p's dial queue passes on
 * only its own options, and a punch needs two more. `localPort` reaches net.connect; the side
 * that is not the initiator is the Noise responder and multistream listener (the upgrader's
 * `initiator: false`) and must also be the Yamux server, which Yamux takes from the raw
 * connection's direction: both sides dialled, so that says "outbound" on both, and two Yamux
 * clients refuse each other. The upgraded connection is registered like any other.
 */
function dialFromPort(
  node: PlexusLibp2p,
  ma: Multiaddr,
  opts: { signal: AbortSignal; localPort: number; initiator: boolean },
): Promise<Connection> {
  const { transportManager, upgrader } = (node as unknown as { components: DialInternals }).components;
  const transport = transportManager.dialTransportForMultiaddr(ma);
  if (!transport) throw new ProtocolError('NO_TRANSPORT', `cannot dial ${ma}`, 'invalid');
  return transport.dial(ma, {
    ...opts,
    upgrader: {
      upgradeOutbound(maConn: { direction: string }, o: unknown) {
        if (!opts.initiator) maConn.direction = 'inbound';
        return upgrader.upgradeOutbound(maConn, o);
      },
    },
  });
}

/** A free local TCP port: the kernel picks one for a listener, which is closed again. */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ port: 0, host: '0.0.0.0', exclusive: true }, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Punches, and answers punches. */
export class HolePuncher {
  readonly #c: PuncherComponents;
  readonly #busy = new Set<string>();
  readonly #answered = new Map<string, number>();
  readonly #backoff = new Map<string, { failures: number; nextAt: number }>();
  /** Punches this node started and that are still under way, by member. */
  readonly #inflight = new Map<string, Promise<PunchResult>>();
  /** The last failed punch to each member, for a caller the other side turns away as too soon. */
  readonly #lastFailure = new Map<string, { at: number; detail: string }>();

  constructor(components: PuncherComponents) {
    this.#c = components;
  }

  /** Registers the protocol (it runs over relayed connections). */
  async start(): Promise<void> {
    await this.#c.node.handle(PUNCH_PROTOCOL, (stream, conn) => this.serve(stream, conn), {
      runOnLimitedConnection: true,
      maxInboundStreams: 1,
    });
  }

  /** One pass: starts a punch to each member reached only through a relay, when it is due. */
  tick(): void {
    const { node, membership } = this.#c;
    if (!this.#c.behindNat() || !this.#c.ownObservedIp()) return;
    const self = node.peerId.toString();
    const now = Date.now();
    const byPeer = new Map<string, Connection[]>();
    for (const c of node.getConnections()) {
      const id = c.remotePeer.toString();
      if (c.status === 'open' && membership.isMember(id)) byPeer.set(id, [...(byPeer.get(id) ?? []), c]);
    }
    for (const [id, conns] of byPeer) {
      if (!conns.every(isRelayed) || this.#busy.has(id) || this.#inflight.has(id)) continue;
      // Only between two nodes behind NAT (a dialable one is dialled directly: reservations.ts),
      // and only one side starts: the smaller peer id.
      if (this.#c.telemetry.latest(id)?.nat?.status !== 'behind-nat' || self > id) continue;
      const b = this.#backoff.get(id) ?? { failures: 0, nextAt: now + PUNCH_FIRST_MS };
      this.#backoff.set(id, b);
      if (b.nextAt > now) continue;
      void this.punch(id);
    }
  }

  /**
   * Tries one punch to a member now; resolves with what happened (never throws). A caller that
   * comes while a punch to that member is under way gets that punch's outcome.
   */
  punch(peerId: string): Promise<PunchResult> {
    const running = this.#inflight.get(peerId);
    if (running) return running;
    const p = this.#punch(peerId).finally(() => this.#inflight.delete(peerId));
    this.#inflight.set(peerId, p);
    return p;
  }

  async #punch(peerId: string): Promise<PunchResult> {
    const { node, logger } = this.#c;
    const relayed = node
      .getConnections(peerIdFromString(peerId))
      .find((c) => c.status === 'open' && isRelayed(c));
    const ip = this.#c.ownObservedIp();
    if (!relayed) return { ok: false, detail: 'no relayed connection to punch through' };
    if (!ip) return { ok: false, detail: 'this node does not know its outside address yet' };
    if (this.#busy.has(peerId)) return { ok: false, detail: 'a punch is under way' };
    this.#busy.add(peerId);
    let stream: Stream | undefined;
    try {
      const port = await freePort();
      const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
      stream = await relayed.newStream(PUNCH_PROTOCOL, { signal, runOnLimitedConnection: true });
      const ch = jsonChannel(stream, MAX_PUNCH_FRAME_BYTES);
      await ch.write({ ip, port }, signal);
      const reply = replySchema.safeParse(await ch.read(signal));
      await stream.close({ signal }).catch(() => {});
      if (!reply.success) throw new ProtocolError('MALFORMED', 'malformed punch reply', 'invalid');
      if ('error' in reply.data)
        throw new ProtocolError(reply.data.error.code, reply.data.error.message, 'unavailable');
      if (!publishedIps(this.#c.telemetry, peerId).includes(reply.data.ip))
        throw new ProtocolError(
          'NOT_OBSERVED',
          `${reply.data.ip} is not an address the peer published`,
          'denied',
        );
      const addr = await this.#dial(peerId, reply.data.ip, reply.data.port, port, true);
      this.#backoff.delete(peerId);
      this.#lastFailure.delete(peerId);
      logger.info({ peer: peerId, addr }, 'hole punched: direct connection through both NATs');
      return { ok: true, detail: addr };
    } catch (err) {
      stream?.abort(err as Error);
      const b = this.#backoff.get(peerId) ?? { failures: 0, nextAt: 0 };
      b.failures++;
      b.nextAt = Date.now() + Math.min(PUNCH_MAX_BACKOFF_MS, 15_000 * 2 ** Math.min(b.failures, 10));
      this.#backoff.set(peerId, b);
      logger.info({ peer: peerId, err: (err as Error).message }, 'hole punch failed');
      const detail = (err as Error).message;
      // Turned away as too soon after this node's own last punch (the punch loop's, typically):
      // that punch's outcome is the answer the caller wants.
      const last = this.#lastFailure.get(peerId);
      if (
        (err as { code?: string }).code === 'RATE_LIMITED' &&
        last &&
        last.at > Date.now() - PUNCH_ANSWER_MS
      )
        return {
          ok: false,
          detail: `${detail}; the last, ${Math.round((Date.now() - last.at) / 1000)} s ago: ${last.detail}`,
        };
      this.#lastFailure.set(peerId, { at: Date.now(), detail });
      return { ok: false, detail };
    } finally {
      this.#busy.delete(peerId);
    }
  }

  /** Answers a punch: checks it, sends our side, dials the asker from our port. */
  async serve(stream: Stream, conn: Connection): Promise<void> {
    const ch = jsonChannel(stream, MAX_PUNCH_FRAME_BYTES);
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    const asker = conn.remotePeer.toString();
    let dial: (() => Promise<unknown>) | undefined;
    let reply: unknown;
    try {
      const offer = this.#check(asker, conn, await ch.read(signal));
      const ip = this.#c.ownObservedIp();
      if (!ip)
        throw new ProtocolError(
          'NO_ADDRESS',
          'this node does not know its outside address yet',
          'unavailable',
        );
      const port = await freePort();
      this.#answered.set(asker, Date.now());
      this.#busy.add(asker);
      reply = { ip, port };
      dial = () =>
        this.#dial(asker, offer.ip, offer.port, port, false)
          .then((addr) =>
            this.#c.logger.info({ peer: asker, addr }, 'hole punched: direct connection through both NATs'),
          )
          .catch((err) =>
            this.#c.logger.info({ peer: asker, err: err.message }, 'answered hole punch failed'),
          )
          .finally(() => this.#busy.delete(asker));
    } catch (err) {
      const { code, message } = toErrorBody(err);
      reply = { error: { code, message } };
    }
    // Dial as soon as the answer is on its way: the asker dials when it arrives.
    const sent = replyAndClose(ch, reply, signal);
    await Promise.all([sent, dial?.()]);
  }

  #check(asker: string, conn: Connection, request: unknown): z.infer<typeof offerSchema> {
    if (!this.#c.membership.isMember(asker))
      throw new ProtocolError('NOT_MEMBER', 'punches are for members only', 'denied');
    if (!isRelayed(conn))
      throw new ProtocolError('NOT_RELAYED', 'this connection is direct already', 'invalid');
    const offer = offerSchema.safeParse(request);
    if (!offer.success) throw new ProtocolError('MALFORMED', 'a punch offer is {ip, port ≥ 1024}', 'invalid');
    if ((this.#answered.get(asker) ?? 0) > Date.now() - PUNCH_ANSWER_MS)
      throw new ProtocolError('RATE_LIMITED', 'one punch per member every 10 s', 'unavailable');
    if (this.#busy.has(asker))
      throw new ProtocolError('BUSY', 'a punch with this member is under way', 'unavailable');
    // Never dial an address the member did not publish as its own: no reflecting to third parties.
    if (!publishedIps(this.#c.telemetry, asker).includes(offer.data.ip))
      throw new ProtocolError(
        'NOT_OBSERVED',
        `${offer.data.ip} is not an address this member published`,
        'denied',
      );
    return offer.data;
  }

  /** The simultaneous dial: from `localPort` to `ip:port`, which must be `peerId`. */
  async #dial(
    peerId: string,
    ip: string,
    port: number,
    localPort: number,
    initiator: boolean,
  ): Promise<string> {
    const family = isIP(ip) === 6 ? 'ip6' : 'ip4';
    const target = multiaddr(`/${family}/${ip}/tcp/${port}/p2p/${peerId}`);
    // A timeout cleared once the dial is done, so that nothing aborts the connection afterwards.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error('punch dial timed out')), PUNCH_DIAL_TIMEOUT_MS);
    const conn = await dialFromPort(this.#c.node, target, {
      signal: abort.signal,
      localPort,
      initiator,
    }).finally(() => clearTimeout(timer));
    if (!conn.remotePeer.equals(peerIdFromString(peerId)) || isRelayed(conn)) {
      await conn.close().catch(() => {});
      throw new ProtocolError('WRONG_PEER', 'the punched connection is not the member’s', 'denied');
    }
    this.#c.punched(conn);
    return conn.remoteAddr.toString();
  }
}
