/**
 * The admitted set: the repository of `members` and `revocations`, and the rules for merging
 * records learnt from gossip or sync. Merging is order-insensitive so every node converges:
 * an admission counts once its admitter is itself a member (or the admin), revocations always
 * win, and of two live members claiming one name the earlier record (then the smaller peer ID)
 * keeps it.
 */
import { EventEmitter } from 'node:events';
import { isPlexusError } from '../core/errors.ts';
import type { SignedBlob } from '../crypto/signed.ts';
import type { Db } from '../store/index.ts';
import { UnknownNodeError } from './errors.ts';
import { OperatorGrants } from './operators.ts';
import { publicKeyOfPeerId } from './peer-ids.ts';
import {
  type Admission,
  asAdmission,
  type MemberPayload,
  openMember,
  openRevocation,
  type RevocationPayload,
  verifyCountersign,
} from './records.ts';

/** A member as stored. */
export interface Member {
  peerId: string;
  name: string;
  tags: string[];
  tokenId: string;
  joinedAt: number;
  admittedBy: string;
  addrs: string[];
  lastSeen: number | null;
  revokedAt: number | null;
}

/** What nodes exchange to converge. */
export interface MembershipSnapshot {
  members: Admission[];
  revocations: SignedBlob[];
  /** Admin-signed operator grants (issue 5); absent from older peers. */
  grants?: SignedBlob[];
}

/** Outcome of merging one admission. */
export type AcceptResult = 'added' | 'known' | 'pending' | 'rejected';

/** Events: `member` (Member) when one is added, `revoked` (RevocationPayload). */
export interface MembershipEvents {
  member: [Member];
  revoked: [RevocationPayload];
}

interface Row {
  peer_id: string;
  name: string;
  tags: string;
  token_id: string;
  joined_at: number;
  admitted_by: string;
  admission: string;
  addrs: string;
  last_seen: number | null;
  revoked_at: number | null;
}

/** Admissions whose admitter we have not learnt yet; bounded so a flood cannot grow memory. */
const MAX_PENDING = 1000;

function toMember(r: Row): Member {
  return {
    peerId: r.peer_id,
    name: r.name,
    tags: JSON.parse(r.tags) as string[],
    tokenId: r.token_id,
    joinedAt: r.joined_at,
    admittedBy: r.admitted_by,
    addrs: JSON.parse(r.addrs) as string[],
    lastSeen: r.last_seen,
    revokedAt: r.revoked_at,
  };
}

/** The membership repository. */
export class Membership extends EventEmitter<MembershipEvents> {
  readonly #db: Db;
  readonly #adminKey: Uint8Array;
  /** Live (admitted, not revoked) peer IDs, for the connection gater's hot path. */
  readonly #live = new Set<string>();
  readonly #revokedPeers = new Set<string>();
  readonly #pending = new Map<string, Admission>();
  /**
   * The records already stored, by their signatures. Every connection and every 30 s sync
   * exchanges whole snapshots; checking each known record's signatures again was thousands of
   * Ed25519 verifications per join in a 20-node mesh. A record that is byte-for-byte one we
   * verified is skipped; anything else (a forgery included) is checked in full.
   * Admissions map to their peer ID; revocations are keyed by their signature.
   */
  readonly #seenAdmissions = new Map<string, string>();
  readonly #seenRevocations = new Set<string>();
  /** Operator keys granted by the admin; they travel with the membership records. */
  readonly operators: OperatorGrants;

  constructor(db: Db, adminPublicKey: Uint8Array) {
    super();
    this.#db = db;
    this.#adminKey = adminPublicKey;
    this.operators = new OperatorGrants(db, adminPublicKey, (kid) => this.isOperatorRevoked(kid));
    for (const r of db.prepare('SELECT peer_id FROM members WHERE revoked_at IS NULL').all() as Row[]) {
      this.#live.add(r.peer_id);
    }
    for (const r of db.prepare('SELECT peer_id, admission FROM members').all() as Row[]) {
      this.#seenAdmissions.set(admissionKey(JSON.parse(r.admission) as Admission), r.peer_id);
    }
    for (const r of db.prepare('SELECT blob FROM revocations').all() as { blob: string }[]) {
      this.#seenRevocations.add((JSON.parse(r.blob) as SignedBlob).s);
    }
    for (const r of db.prepare("SELECT subject FROM revocations WHERE kind = 'node'").all() as {
      subject: string;
    }[]) {
      this.#revokedPeers.add(r.subject);
    }
  }

  /** True if the peer is admitted and not revoked. */
  isMember(peerId: string): boolean {
    return this.#live.has(peerId);
  }

  /** True if the peer was revoked. */
  isRevoked(peerId: string): boolean {
    return this.#revokedPeers.has(peerId);
  }

  #revokedAt(peerId: string): number {
    const r = this.#db
      .prepare("SELECT at FROM revocations WHERE kind = 'node' AND subject = ?")
      .get(peerId) as { at: number } | undefined;
    return r?.at ?? 0;
  }

  /** True if the token was revoked. */
  isTokenRevoked(tokenId: string): boolean {
    return Boolean(
      this.#db.prepare("SELECT 1 FROM revocations WHERE kind = 'token' AND subject = ?").get(tokenId),
    );
  }

  /** True if an operator key was revoked. */
  isOperatorRevoked(kid: string): boolean {
    return Boolean(
      this.#db.prepare("SELECT 1 FROM revocations WHERE kind = 'operator' AND subject = ?").get(kid),
    );
  }

  /** How many nodes have joined with a token (revoked ones included: a use is a use). */
  tokenUses(tokenId: string): number {
    return (
      this.#db.prepare('SELECT COUNT(*) AS n FROM members WHERE token_id = ?').get(tokenId) as { n: number }
    ).n;
  }

  /** A live member by peer ID. */
  get(peerId: string): Member | undefined {
    const r = this.#db.prepare('SELECT * FROM members WHERE peer_id = ?').get(peerId) as Row | undefined;
    return r ? toMember(r) : undefined;
  }

  /** A live member by name. */
  byName(name: string): Member | undefined {
    const r = this.#db.prepare('SELECT * FROM members WHERE name = ? AND revoked_at IS NULL').get(name) as
      | Row
      | undefined;
    return r ? toMember(r) : undefined;
  }

  /** Resolves a node name (or a peer ID) to a live member; throws UnknownNodeError. */
  resolve(nameOrPeer: string): Member {
    const m = this.byName(nameOrPeer) ?? this.get(nameOrPeer);
    if (!m || m.revokedAt) throw new UnknownNodeError(nameOrPeer);
    return m;
  }

  /** Every member, live first, by name. */
  list(opts: { includeRevoked?: boolean } = {}): Member[] {
    const where = opts.includeRevoked ? '' : 'WHERE revoked_at IS NULL';
    return (
      this.#db.prepare(`SELECT * FROM members ${where} ORDER BY revoked_at IS NOT NULL, name`).all() as Row[]
    ).map(toMember);
  }

  /** Live member peer IDs. */
  livePeerIds(): string[] {
    return [...this.#live];
  }

  /** Remembers where a member was last reachable and when it was last heard from. */
  touch(peerId: string, update: { addrs?: string[]; lastSeen?: number }): void {
    if (!this.#live.has(peerId)) return;
    if (update.addrs) {
      this.#db
        .prepare('UPDATE members SET addrs = ? WHERE peer_id = ?')
        .run(JSON.stringify(update.addrs.slice(0, 32)), peerId);
    }
    if (update.lastSeen) {
      this.#db.prepare('UPDATE members SET last_seen = ? WHERE peer_id = ?').run(update.lastSeen, peerId);
    }
  }

  /**
   * Merges one admission. Verifies both signatures; an admission by a peer we do not know yet is
   * kept pending (bounded) and retried when members are added.
   */
  accept(value: unknown): AcceptResult {
    let adm: Admission;
    let payload: MemberPayload;
    try {
      adm = asAdmission(value);
      const seen = this.#seenAdmissions.get(admissionKey(adm));
      if (seen !== undefined) return this.#revokedPeers.has(seen) ? 'rejected' : 'known';
      payload = openMember(adm.member);
    } catch {
      return 'rejected';
    }
    if (this.#revokedPeers.has(payload.peerId)) return 'rejected';
    const existing = this.#db.prepare('SELECT * FROM members WHERE peer_id = ?').get(payload.peerId) as
      | Row
      | undefined;
    if (existing) return 'known';
    let admitterKey: Uint8Array | undefined;
    if (adm.by === 'admin') admitterKey = this.#adminKey;
    else if (this.#live.has(adm.by)) admitterKey = publicKeyOfPeerId(adm.by);
    else if (this.#revokedPeers.has(adm.by)) {
      // An admission made before its admitter was revoked stays valid (it was honest then); one
      // dated after the revocation is exactly what a stolen node key would produce.
      if (payload.at >= this.#revokedAt(adm.by)) return 'rejected';
      admitterKey = publicKeyOfPeerId(adm.by);
    }
    if (!admitterKey) {
      if (this.#pending.size < MAX_PENDING) this.#pending.set(payload.peerId, adm);
      return 'pending';
    }
    try {
      verifyCountersign(adm, admitterKey);
    } catch {
      return 'rejected';
    }
    const added = this.#insert(adm, payload);
    if (added) this.#drainPending();
    return added ? 'added' : 'rejected';
  }

  #insert(adm: Admission, payload: MemberPayload): boolean {
    const clash = this.#db
      .prepare('SELECT * FROM members WHERE name = ? AND revoked_at IS NULL')
      .get(payload.name) as Row | undefined;
    if (clash) {
      const incumbentWins =
        clash.joined_at < payload.at || (clash.joined_at === payload.at && clash.peer_id < payload.peerId);
      if (incumbentWins) return false;
      // The newcomer's claim is older: the incumbent was admitted concurrently elsewhere and loses.
      this.#db.prepare('DELETE FROM members WHERE peer_id = ?').run(clash.peer_id);
      this.#live.delete(clash.peer_id);
      this.#seenAdmissions.delete(admissionKey(JSON.parse(clash.admission) as Admission));
    }
    this.#db
      .prepare(
        `INSERT INTO members (peer_id, name, tags, token_id, joined_at, admitted_by, admission)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        payload.peerId,
        payload.name,
        JSON.stringify(payload.tags),
        payload.tokenId,
        payload.at,
        adm.by,
        JSON.stringify(adm),
      );
    this.#live.add(payload.peerId);
    this.#seenAdmissions.set(admissionKey(adm), payload.peerId);
    const member = this.get(payload.peerId)!;
    this.emit('member', member);
    return true;
  }

  #drainPending(): void {
    for (const [peerId, adm] of [...this.#pending]) {
      if (adm.by !== 'admin' && !this.#live.has(adm.by)) continue;
      this.#pending.delete(peerId);
      this.accept(adm);
    }
  }

  /** Merges an admin-signed revocation. Returns true if it was new. */
  revoke(blob: unknown): boolean {
    let payload: RevocationPayload;
    const sig = (blob as SignedBlob | null)?.s;
    if (typeof sig === 'string' && this.#seenRevocations.has(sig)) return false;
    try {
      payload = openRevocation(blob, this.#adminKey);
    } catch (err) {
      if (isPlexusError(err)) return false;
      throw err;
    }
    const seen = this.#db
      .prepare('SELECT 1 FROM revocations WHERE kind = ? AND subject = ?')
      .get(payload.kind, payload.subject);
    if (seen) return false;
    const b = blob as SignedBlob;
    this.#db.transaction(() => {
      this.#db
        .prepare('INSERT INTO revocations (kind, subject, at, blob) VALUES (?, ?, ?, ?)')
        .run(payload.kind, payload.subject, payload.at, JSON.stringify({ p: b.p, s: b.s }));
      if (payload.kind === 'node') {
        this.#db
          .prepare('UPDATE members SET revoked_at = ? WHERE peer_id = ? AND revoked_at IS NULL')
          .run(payload.at, payload.subject);
      }
    })();
    this.#seenRevocations.add(b.s);
    if (payload.kind === 'node') {
      this.#live.delete(payload.subject);
      this.#revokedPeers.add(payload.subject);
      this.#pending.delete(payload.subject);
    }
    this.emit('revoked', payload);
    return true;
  }

  /** Everything a peer needs to converge with us. */
  snapshot(): MembershipSnapshot {
    const members = (this.#db.prepare('SELECT admission FROM members').all() as { admission: string }[]).map(
      (r) => JSON.parse(r.admission) as Admission,
    );
    const revocations = (this.#db.prepare('SELECT blob FROM revocations').all() as { blob: string }[]).map(
      (r) => JSON.parse(r.blob) as SignedBlob,
    );
    return { members, revocations, grants: this.operators.snapshot() };
  }

  /** Merges a peer's snapshot (revocations first). Returns how many records were new. */
  merge(snapshot: unknown): number {
    const s = snapshot as MembershipSnapshot;
    if (typeof s !== 'object' || s === null || !Array.isArray(s.members) || !Array.isArray(s.revocations))
      return 0;
    let added = 0;
    for (const r of s.revocations) if (this.revoke(r)) added++;
    for (const m of s.members) if (this.accept(m) === 'added') added++;
    for (const g of Array.isArray(s.grants) ? s.grants : []) if (this.operators.accept(g)) added++;
    return added;
  }
}

/** The identity of an admission record: its two signatures. */
function admissionKey(adm: Admission): string {
  return `${adm.member.s}.${adm.bs}`;
}
