/**
 * Dial-back (`/plexus/dialback/1.0.0`, issue 14): a member asks another "dial me back on these
 * ports", and learns whether it can be dialled, i.e. whether it is behind NAT (reachability.ts).
 *
 * libp2p's AutoNAT cannot answer that here: it never dials or reports a private address, and a
 * plexus mesh lives on private ones (LANs, VPCs, VPNs). So this is the same idea with the
 * limits a members-only mesh wants:
 * - only members get an answer (the gater refused everyone else before any protocol ran; checked
 *   again here), and only over a direct connection: a relayed one shows the relay's address;
 * - the answering node dials nothing but the IP address the asking connection came from (what it
 *   observed, never an address the asker claims), on at most MAX_DIALBACK_PORTS ports, as a full
 *   libp2p dial that must authenticate as the asker's peer id, so it is no port scanner and no
 *   reflector: the reply says only ok or not per port, never why;
 * - per asker a small token bucket, and at most MAX_DIALBACKS_IN_FLIGHT dial-backs at once
 *   (more are refused, not queued); a request frame is at most MAX_DIALBACK_FRAME_BYTES.
 */
import type { Connection, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr';
import { toErrorBody } from '../core/errors.ts';
import * as z from '../core/zod.ts';
import {
  DIALBACK_BURST,
  DIALBACK_DIAL_TIMEOUT_MS,
  DIALBACK_PROTOCOL,
  DIALBACK_REFILL_MS,
  MAX_DIALBACK_FRAME_BYTES,
  MAX_DIALBACK_PORTS,
  MAX_DIALBACKS_IN_FLIGHT,
  PROTOCOL_TIMEOUT_MS,
} from './constants.ts';
import { ProtocolError } from './errors.ts';
import { jsonChannel, replyAndClose } from './json-stream.ts';
import type { Membership } from './membership.ts';
import type { PlexusLibp2p } from './node.ts';

const requestSchema = z.strictObject({
  ports: z.array(z.number().int().min(1).max(65535)).min(1).max(MAX_DIALBACK_PORTS),
});

const replySchema = z.union([
  z.strictObject({
    observed: z.string().max(128),
    results: z.array(z.strictObject({ port: z.number().int(), ok: z.boolean() })).max(MAX_DIALBACK_PORTS),
  }),
  z.object({ error: z.object({ code: z.string().max(64), message: z.string().max(512) }) }),
]);

/** What one dial-back told the asker. */
export type DialbackReply = z.infer<typeof replySchema>;

/** The IP address and TCP port of a direct connection's remote end, or undefined for a relayed one. */
export function observedEndpoint(
  addr: Multiaddr,
): { family: 'ip4' | 'ip6'; ip: string; port: number } | undefined {
  let family: 'ip4' | 'ip6' | undefined;
  let ip = '';
  let port = 0;
  for (const c of addr.getComponents()) {
    if (c.name === 'p2p-circuit') return undefined;
    if ((c.name === 'ip4' || c.name === 'ip6') && !family) {
      family = c.name;
      ip = c.value ?? '';
    }
    if (c.name === 'tcp' && !port) port = Number(c.value);
  }
  return family && ip && port ? { family, ip, port } : undefined;
}

/** What the dial-back service uses. */
export interface DialbackComponents {
  node: PlexusLibp2p;
  membership: Membership;
}

/** Answers dial-back requests. */
export class DialbackService {
  readonly #c: DialbackComponents;
  /** Per asker: tokens left and when they were last counted. Only members get here. */
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  #inFlight = 0;

  constructor(components: DialbackComponents) {
    this.#c = components;
  }

  /** Registers the protocol handler. */
  async start(): Promise<void> {
    await this.#c.node.handle(DIALBACK_PROTOCOL, (stream, conn) => this.serve(stream, conn), {
      maxInboundStreams: 2,
    });
  }

  /** Serves one request: validates it, dials back within the limits, answers, closes. */
  async serve(stream: Stream, conn: Connection): Promise<void> {
    const ch = jsonChannel(stream, MAX_DIALBACK_FRAME_BYTES);
    const signal = AbortSignal.timeout(PROTOCOL_TIMEOUT_MS);
    let reply: DialbackReply;
    try {
      reply = await this.answer(await ch.read(signal), conn);
    } catch (err) {
      const { code, message } = toErrorBody(err);
      reply = { error: { code, message } };
    }
    await replyAndClose(ch, reply, signal);
  }

  /** The reply to one request from `conn`'s peer (exported for tests through `serve`). */
  async answer(request: unknown, conn: Connection): Promise<DialbackReply> {
    const asker = conn.remotePeer.toString();
    if (!this.#c.membership.isMember(asker))
      throw new ProtocolError('NOT_MEMBER', 'dial-backs are for members only', 'denied');
    const seen = observedEndpoint(conn.remoteAddr);
    if (!seen)
      throw new ProtocolError('RELAYED', 'ask over a direct connection: this one is relayed', 'invalid');
    const parsed = requestSchema.safeParse(request);
    if (!parsed.success)
      throw new ProtocolError(
        'MALFORMED',
        `a dial-back request is {ports: [1 to ${MAX_DIALBACK_PORTS} TCP ports]}`,
        'invalid',
      );
    if (!this.#take(asker))
      throw new ProtocolError(
        'RATE_LIMITED',
        'too many dial-backs asked; try again in a minute',
        'unavailable',
      );
    if (this.#inFlight >= MAX_DIALBACKS_IN_FLIGHT)
      throw new ProtocolError('BUSY', 'too many dial-backs running here; ask another member', 'unavailable');
    this.#inFlight++;
    try {
      const ports = [...new Set(parsed.data.ports)];
      const results = await Promise.all(
        ports.map(async (port) => ({ port, ok: await this.#dialBack(seen.family, seen.ip, port, asker) })),
      );
      return { observed: `/${seen.family}/${seen.ip}/tcp/${seen.port}`, results };
    } finally {
      this.#inFlight--;
    }
  }

  /** Dials the asker at ip:port, as a new connection that must be the asker's; closes it again. */
  async #dialBack(family: string, ip: string, port: number, asker: string): Promise<boolean> {
    const target = multiaddr(`/${family}/${ip}/tcp/${port}/p2p/${asker}`);
    try {
      const conn = await this.#c.node.dial(target, {
        force: true,
        signal: AbortSignal.timeout(DIALBACK_DIAL_TIMEOUT_MS),
      });
      // libp2p joins a dial to a peer that is already being dialled: only a connection to the
      // very address asked for proves anything, and only that one is ours to close.
      const e = observedEndpoint(conn.remoteAddr);
      if (e?.ip !== ip || e.port !== port) return false;
      const ok = conn.remotePeer.equals(peerIdFromString(asker));
      await conn.close().catch(() => conn.abort(new Error('closing a dial-back')));
      return ok;
    } catch {
      return false;
    }
  }

  /** Takes one token of the asker's bucket. */
  #take(asker: string): boolean {
    const now = Date.now();
    const b = this.#buckets.get(asker) ?? { tokens: DIALBACK_BURST, at: now };
    b.tokens = Math.min(DIALBACK_BURST, b.tokens + (now - b.at) / DIALBACK_REFILL_MS);
    b.at = now;
    this.#buckets.set(asker, b);
    // Full buckets carry no information: drop them so the map stays as small as the askers of late.
    for (const [id, x] of this.#buckets)
      if (x.tokens + (now - x.at) / DIALBACK_REFILL_MS >= DIALBACK_BURST && id !== asker)
        this.#buckets.delete(id);
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }
}

/** Asks `conn`'s peer to dial this node back on `ports`. */
export async function askDialback(
  conn: Connection,
  ports: number[],
  signal: AbortSignal,
): Promise<DialbackReply> {
  const stream = await conn.newStream(DIALBACK_PROTOCOL, { signal });
  const ch = jsonChannel(stream, MAX_DIALBACK_FRAME_BYTES);
  try {
    await ch.write({ ports: ports.slice(0, MAX_DIALBACK_PORTS) }, signal);
    const parsed = replySchema.safeParse(await ch.read(signal));
    if (!parsed.success) throw new ProtocolError('MALFORMED', 'malformed dial-back reply', 'invalid');
    await stream.close({ signal }).catch(() => {});
    return parsed.data;
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  }
}
