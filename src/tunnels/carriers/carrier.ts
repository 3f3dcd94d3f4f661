/**
 * What a carrier is: the way one tunnel's bytes travel between two agents. There are two, with
 * the same requests, refusals, half-close and reset semantics (docs/tunnels.md):
 * - `stream/`: a `/plexus/tcp/1.0.0` stream on the mesh connection (relayed or direct links);
 * - `data/`: a TCP connection of its own in TLS 1.3 (dialled by either side), much faster; when
 *   neither side can dial the other, a relay splices two outbound ones (`spliced/`) and the
 *   same TLS runs through it (carrier `spliced`).
 * Each has an `open.ts` (the client end, given an OpeningTunnel) and a `serve.ts` (the server
 * end). The client (client.ts) picks the carrier; the server (server.ts) accepts both.
 */
import type { Socket } from 'node:net';
import type { Connection } from '@libp2p/interface';
import type { Member } from '../../mesh/index.ts';
import type { TunnelRequest } from '../handshake.ts';

/** Bytes that went each way through a splice, and how it ended. */
export interface SpliceResult {
  /** Local socket → carrier. */
  sent: number;
  /** Carrier → local socket. */
  received: number;
  /** True when both sides ended cleanly. */
  clean: boolean;
  /** Why it did not end cleanly. */
  error?: string;
}

/** An opened tunnel, not yet joined to a client socket. */
export interface OpenedTunnel {
  /** `direct`, `relayed` or `local` (the target is this node). */
  path: 'direct' | 'relayed' | 'local';
  /**
   * What carries the bytes: a data connection of its own (straight, or `spliced` by a relay),
   * the mesh stream, or local sockets.
   */
  carrier: 'data' | 'spliced' | 'stream' | 'local';
  /**
   * Joins the client socket to the tunnel; resolves when both are closed. `firstBytes` were
   * already read from the socket (pipelined after a SOCKS request) and go out first.
   */
  attach(socket: Socket, firstBytes?: Uint8Array): Promise<void>;
  /** Gives the tunnel up without a client (e.g. the SOCKS client went away). */
  abort(): void;
}

/** A tunnel being opened (counted and within limits): what it asks for, how it settles. */
export interface OpeningTunnel {
  member: Member;
  req: TunnelRequest;
  /** Aborts on the open timeout or when the client goes away. */
  sig: AbortSignal;
  /** Return once the request is sent; the far side's answer is awaited in `attach`. */
  optimistic: boolean;
  /**
   * The far side answered: the setup is over, so its deadline is disarmed and the client's
   * signal unhooked (aborting it later would only build events nobody listens to); idempotent.
   */
  opened(): void;
  /** Releases the tunnel's slot and count; idempotent. */
  done(): void;
  /** Releases it and throws `err` as the reason it could not open. */
  fail(err: unknown): never;
}

/** True for a connection through a circuit relay (its bytes cross a third node). */
export const isRelayed = (conn: Connection): boolean => conn.remoteAddr.toString().includes('/p2p-circuit');
