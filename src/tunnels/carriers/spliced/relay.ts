/**
 * The relay's end of spliced connections (docs/tunnels.md, spliced connections). Two members
 * that cannot dial each other's data ports (both behind NAT) each dial out to the data listener
 * of a relay they both reach, and the relay joins the two TCP connections byte for byte. The
 * bytes are the end-to-end TLS between the two members, keyed by a ticket the target issued
 * over the Noise-encrypted mesh: the relay never holds a key, so it can only pass them on.
 *
 * Who may splice: a member asks over the mesh (Noise, member-only) for rendezvous with another
 * member; the relay hands it one ticket per rendezvous (a random 16-byte id and 32-byte secret)
 * and, when the named peer asks over its own mesh connection to join, that peer its tickets. A
 * side's TCP connection presents its ticket in a fixed-size preamble (wire.ts); the ticket is
 * taken out of the table when it is used, so a replayed preamble finds nothing, and each side is
 * checked to still be a member when it arrives. A rendezvous not complete within SPLICE_WAIT_MS
 * is dropped with its socket. Limits: waiting rendezvous and spliced pairs, per peer (either
 * end) and in total. Revoking a peer closes its rendezvous and splices at once.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from '../../../logging/index.ts';
import { letGoOfClosed } from '../../../runtime/closed-socket.ts';
import { userBufferReader } from '../../../runtime/socket-reader.ts';
import {
  MAX_SPLICE_WAITING,
  MAX_SPLICE_WAITING_PER_PEER,
  MAX_SPLICES,
  MAX_SPLICES_PER_PEER,
  SPLICE_WAIT_MS,
} from '../../constants.ts';
import { SpliceRefusedError, TunnelLimitError } from '../../errors.ts';
import { LocalWriter } from '../data/local-writer.ts';
import type { DataTicket } from '../data/tickets.ts';

/** One side of a rendezvous: the member it is for, its secret, its connection once there. */
interface Side {
  peer: string;
  ticket: string;
  secret: Buffer;
  /** Its ticket was issued (the opener's at once, the target's when it joins). */
  issued: boolean;
  socket?: Socket;
  /** Bytes that came behind the preamble (the start of the TLS handshake), sent on at pairing. */
  rest?: Buffer;
}

interface Rendezvous {
  id: string;
  sides: [Side, Side];
  timer: NodeJS.Timeout;
}

interface Pair {
  peers: [string, string];
  sockets: [Socket, Socket];
}

/** What `plexus status` shows of a relay's splices. */
export interface SpliceCounters {
  /** Spliced pairs carried now. */
  active: number;
  /** Rendezvous waiting for a side. */
  waiting: number;
  /** Pairs spliced since start. */
  total: number;
  /** Bytes passed on, both ways, by pairs that have ended and those still open. */
  bytes: number;
}

/** The relay's rendezvous table and the splices it carries. */
export class SpliceRelay {
  readonly #isMember: (peer: string) => boolean;
  readonly #logger: Logger;
  readonly #rendezvous = new Map<string, Rendezvous>();
  readonly #tickets = new Map<string, { r: Rendezvous; side: Side }>();
  readonly #pairs = new Set<Pair>();
  readonly #waitingPerPeer = new Map<string, number>();
  readonly #pairsPerPeer = new Map<string, number>();
  #total = 0;
  #bytes = 0;

  constructor(components: { isMember(peer: string): boolean; logger: Logger }) {
    this.#isMember = components.isMember;
    this.#logger = components.logger;
  }

  /** Counters for status and leak checks. */
  counters(): SpliceCounters {
    return {
      active: this.#pairs.size,
      waiting: this.#rendezvous.size,
      total: this.#total,
      bytes: this.#bytes,
    };
  }

  /**
   * Makes `count` rendezvous between `opener` (the asking member) and `peer`; returns their ids
   * and the opener's tickets. Throws SpliceRefusedError or TunnelLimitError.
   */
  open(opener: string, peer: string, count: number, self: string): { ids: string[]; tickets: DataTicket[] } {
    if (peer === opener || peer === self) throw new SpliceRefusedError('a splice joins two other members');
    if (!this.#isMember(opener) || !this.#isMember(peer))
      throw new SpliceRefusedError(`${this.#isMember(opener) ? peer : opener} is not a member`);
    const over = (p: string) => (this.#waitingPerPeer.get(p) ?? 0) + count > MAX_SPLICE_WAITING_PER_PEER;
    if (this.#rendezvous.size + count > MAX_SPLICE_WAITING || over(opener) || over(peer))
      throw new TunnelLimitError('too many splices waiting at the relay');
    if (this.#pairCount(opener) + count > MAX_SPLICES_PER_PEER || this.#pairs.size + count > MAX_SPLICES)
      throw new TunnelLimitError('too many splices at the relay');
    const ids: string[] = [];
    const tickets: DataTicket[] = [];
    for (let i = 0; i < count; i++) {
      const side = (p: string, issued: boolean): Side => ({
        peer: p,
        ticket: randomBytes(16).toString('base64url'),
        secret: randomBytes(32),
        issued,
      });
      const id = randomBytes(16).toString('base64url');
      const r: Rendezvous = {
        id,
        sides: [side(opener, true), side(peer, false)],
        timer: setTimeout(() => this.#abandon(r), SPLICE_WAIT_MS).unref(),
      };
      this.#rendezvous.set(id, r);
      for (const s of r.sides) {
        this.#tickets.set(s.ticket, { r, side: s });
        this.#countWaiting(s.peer, 1);
      }
      ids.push(id);
      tickets.push({ id: r.sides[0].ticket, key: r.sides[0].secret.toString('base64url') });
    }
    return { ids, tickets };
  }

  /**
   * The tickets of `joiner`'s sides of rendezvous that `opener` made with it; throws
   * SpliceRefusedError when any of them is unknown, expired, already joined or not between them.
   */
  join(joiner: string, opener: string, ids: string[]): DataTicket[] {
    const sides = ids.map((id) => {
      const r = this.#rendezvous.get(id);
      const [a, b] = r?.sides ?? [];
      if (!r || !a || !b || a.peer !== opener || b.peer !== joiner || b.issued)
        throw new SpliceRefusedError(`no rendezvous ${id} for you with that peer (expired or used)`);
      return b;
    });
    if (!this.#isMember(joiner) || !this.#isMember(opener))
      throw new SpliceRefusedError('both ends must be current members');
    return sides.map((s) => {
      s.issued = true;
      return { id: s.ticket, key: s.secret.toString('base64url') };
    });
  }

  /**
   * A connection presented a ticket in its preamble; `rest` came behind it. Returns false (the
   * caller resets the socket) for an unknown, used or unissued ticket, a wrong secret, or a side
   * that is no longer a member; otherwise the relay owns the socket.
   */
  arrive(ticket: string, secret: Buffer, socket: Socket, rest: Buffer): boolean {
    const hit = this.#tickets.get(ticket);
    if (!hit?.side.issued || !timingSafeEqual(hit.side.secret, secret)) return false;
    const { r, side } = hit;
    // Used: the same preamble again finds nothing.
    this.#tickets.delete(ticket);
    if (!r.sides.every((s) => this.#isMember(s.peer))) {
      this.#abandon(r);
      return false;
    }
    side.socket = socket;
    side.rest = rest;
    // Nothing is read while the other side is on its way: the kernel's buffers hold the rest.
    socket.pause();
    socket.on('error', () => {});
    socket.once('close', () => {
      if (this.#rendezvous.get(r.id) === r) this.#abandon(r);
    });
    const [a, b] = r.sides;
    if (a.socket && b.socket) this.#pair(r, a.socket, b.socket);
    return true;
  }

  /** Closes every rendezvous and splice of a peer (it was revoked). */
  drop(peer: string): void {
    for (const r of [...this.#rendezvous.values()])
      if (r.sides.some((s) => s.peer === peer)) this.#abandon(r);
    for (const p of [...this.#pairs])
      if (p.peers.includes(peer)) for (const s of p.sockets) s.resetAndDestroy();
  }

  /** Closes everything (the agent stops). */
  stop(): void {
    for (const r of [...this.#rendezvous.values()]) this.#abandon(r);
    for (const p of [...this.#pairs]) for (const s of p.sockets) s.destroy();
  }

  #pairCount(peer: string): number {
    return this.#pairsPerPeer.get(peer) ?? 0;
  }

  #countWaiting(peer: string, d: number): void {
    const n = (this.#waitingPerPeer.get(peer) ?? 0) + d;
    if (n <= 0) this.#waitingPerPeer.delete(peer);
    else this.#waitingPerPeer.set(peer, n);
  }

  #countPairs(peer: string, d: number): void {
    const n = this.#pairCount(peer) + d;
    if (n <= 0) this.#pairsPerPeer.delete(peer);
    else this.#pairsPerPeer.set(peer, n);
  }

  /** Takes a rendezvous out of the table (completed or not). */
  #remove(r: Rendezvous): void {
    if (this.#rendezvous.get(r.id) !== r) return;
    clearTimeout(r.timer);
    this.#rendezvous.delete(r.id);
    for (const s of r.sides) {
      this.#tickets.delete(s.ticket);
      this.#countWaiting(s.peer, -1);
    }
  }

  /** A side never came (or left, or was revoked): drop the rendezvous and close what came. */
  #abandon(r: Rendezvous): void {
    if (this.#rendezvous.get(r.id) !== r) return;
    this.#remove(r);
    for (const s of r.sides) s.socket?.resetAndDestroy();
  }

  /** Both sides are here: pass bytes both ways until both have closed. */
  #pair(r: Rendezvous, a: Socket, b: Socket): void {
    this.#remove(r);
    const pair: Pair = { peers: [r.sides[0].peer, r.sides[1].peer], sockets: [a, b] };
    this.#pairs.add(pair);
    for (const p of pair.peers) this.#countPairs(p, 1);
    this.#total++;
    let closed = 0;
    const onClose = () => {
      if (++closed < 2) return;
      this.#pairs.delete(pair);
      for (const p of pair.peers) this.#countPairs(p, -1);
    };
    a.once('close', onClose);
    b.once('close', onClose);
    this.#pipe(a, b, r.sides[0].rest);
    this.#pipe(b, a, r.sides[1].rest);
    this.#logger.debug({ peers: pair.peers }, 'splice paired');
  }

  /**
   * One direction: bytes as they come, a FIN passed on as a FIN, and a reset (or any error) as a
   * reset. Reads land in the shared read buffer (runtime/socket-reader.ts) and are copied into
   * reused staging buffers, written while no write of ours is in flight (the data carrier's
   * LocalWriter, data/local-writer.ts): no Buffer per read, and one write for what came while
   * the last was in flight. The reader pauses while more than half a staging buffer waits (TCP's
   * windows then hold the sender back).
   */
  #pipe(from: Socket, to: Socket, rest: Buffer | undefined): void {
    const writer = new LocalWriter(to, (go) => {
      if (from.destroyed) return;
      if (go) from.resume();
      else from.pause();
    });
    const reader = userBufferReader(from);
    const write = (d: Uint8Array) => {
      this.#bytes += d.byteLength;
      writer.push(d);
      writer.flush();
    };
    if (rest && rest.length > 0) write(rest);
    reader.set(write);
    from.once('end', () => writer.end());
    from.once('close', (hadError) => {
      // A clean close has passed its FIN on already; anything else is a cut, passed on as a reset.
      if (hadError || !from.readableEnded) to.resetAndDestroy();
      letGoOfClosed(from, reader);
    });
    from.resume();
  }
}
