/**
 * The admitted set: the repository of `members` and `revocations`, and the rules for merging
 * records learnt from a joiner, gossip or sync. Every admission is checked back to the admin key
 * on its own (records.ts), then judged against what this node already holds (admission-rules.ts):
 * its token's deadline, its token's uses across the mesh, and its name. Revocations always win.
 * Claims that lose a conflict are kept as `lost` rows, reported, and never served to peers.
 */
import { EventEmitter } from 'node:events';
import { isPlexusError, type PlexusError } from '../core/errors.ts';
import type { SignedBlob } from '../crypto/signed.ts';
import { type Db, durably } from '../store/index.ts';
import { type Claim, judgeClaim, rowClaim } from './admission-rules.ts';
import { AdmissionError, NetworkSetupError, UnknownNodeError } from './errors.ts';
import { type Conflict, type Member, MemberRows, toMember } from './member-rows.ts';
import { OperatorGrants } from './operators.ts';
import {
  type Admission,
  asAdmission,
  openRevocation,
  type RevocationPayload,
  type VerifiedAdmission,
  verifyAdmission,
} from './records.ts';

export type { Conflict, Member } from './member-rows.ts';

/** What nodes exchange to converge. */
export interface MembershipSnapshot {
  members: Admission[];
  revocations: SignedBlob[];
  /** Admin-signed operator grants (issue 5). */
  grants?: SignedBlob[];
}

/** Outcome of merging one admission. */
export type AcceptResult = 'added' | 'known' | 'rejected';

/** The outcome with the reason of a rejection. */
export type Acceptance = { result: 'added' | 'known' } | { result: 'rejected'; error: PlexusError };

/**
 * Events: `member` when one is added, `revoked` for a revocation, `lost` when a member this node
 * held loses a race to a better claim, `conflict` when a claim is refused or dropped.
 */
export interface MembershipEvents {
  member: [Member];
  revoked: [RevocationPayload];
  lost: [Member];
  conflict: [Conflict];
}

/** The membership repository. */
export class Membership extends EventEmitter<MembershipEvents> {
  readonly #db: Db;
  readonly #rows: MemberRows;
  readonly #adminKey: Uint8Array;
  /**
   * Live (admitted, not revoked, not lost) peer IDs with their names, for the hot paths: the
   * connection gater, and every telemetry record (its sender must be a member and the record
   * must carry that member's name), which no longer reads the member's row (its stored
   * admission is a few KiB) for it.
   */
  readonly #live = new Map<string, string>();
  readonly #revokedPeers = new Set<string>();
  /**
   * Records already judged, by their whole content (both signed payloads, all three
   * signatures). Every connection and every 30 s sync exchanges whole snapshots; a record
   * identical to one we judged is not verified again (three Ed25519 checks each). Anything
   * else, a forgery or a copy with one field changed included, is checked in full.
   */
  readonly #judged = new Map<string, string>();
  readonly #seenRevocations = new Set<string>();
  /** Since when this node has been in touch with the mesh (see `inSync`); undefined before. */
  #inSyncSince: number | undefined;
  /** Admissions checked in full against the admin key, and those known by their content. */
  readonly checks = { verified: 0, known: 0 };
  /** Operator keys granted by the admin; they travel with the membership records. */
  readonly operators: OperatorGrants;

  constructor(db: Db, adminPublicKey: Uint8Array) {
    super();
    this.#db = db;
    this.#rows = new MemberRows(db);
    this.#adminKey = adminPublicKey;
    this.operators = new OperatorGrants(db, adminPublicKey, (kid) => this.isOperatorRevoked(kid));
    const rows = this.#rows.all();
    if (rows.some((r) => !('token' in (JSON.parse(r.admission) as object)))) {
      throw new NetworkSetupError(
        'MEMBERSHIP_OUTDATED',
        "this data dir's members were admitted by an older plexus whose admissions cannot be checked back to the admin key; create the network again ('plexus init', then 'plexus join' with new tokens)",
      );
    }
    for (const r of rows) {
      if (r.revoked_at === null && r.lost === null) this.#live.set(r.peer_id, r.name);
      this.#judged.set(admissionKey(JSON.parse(r.admission) as Admission), r.peer_id);
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

  /** True if the peer is admitted and neither revoked nor lost. */
  isMember(peerId: string): boolean {
    return this.#live.has(peerId);
  }

  /** The name of a live member, or undefined if the peer is not one. */
  liveName(peerId: string): string | undefined {
    return this.#live.get(peerId);
  }

  /** True if the peer was revoked. */
  isRevoked(peerId: string): boolean {
    return this.#revokedPeers.has(peerId);
  }

  /** When a token was revoked (admin-signed time), or undefined. */
  tokenRevokedAt(tokenId: string): number | undefined {
    const r = this.#db
      .prepare("SELECT at FROM revocations WHERE kind = 'token' AND subject = ?")
      .get(tokenId) as { at: number } | undefined;
    return r?.at;
  }

  /** True if the token was revoked. */
  isTokenRevoked(tokenId: string): boolean {
    return this.tokenRevokedAt(tokenId) !== undefined;
  }

  /** True if an operator key was revoked. */
  isOperatorRevoked(kid: string): boolean {
    return Boolean(
      this.#db.prepare("SELECT 1 FROM revocations WHERE kind = 'operator' AND subject = ?").get(kid),
    );
  }

  /** How many nodes have joined with a token (revoked ones included: a use is a use). */
  tokenUses(tokenId: string): number {
    return this.#rows.tokenUses(tokenId);
  }

  /** A member by peer ID (live or revoked; never a lost claim). */
  get(peerId: string): Member | undefined {
    const r = this.#rows.byPeer(peerId);
    return r && r.lost === null ? toMember(r) : undefined;
  }

  /** A live member by name. */
  byName(name: string): Member | undefined {
    const r = this.#rows.liveByName(name);
    return r ? toMember(r) : undefined;
  }

  /** Resolves a node name (or a peer ID) to a live member; throws UnknownNodeError. */
  resolve(nameOrPeer: string): Member {
    const m = this.byName(nameOrPeer) ?? this.get(nameOrPeer);
    if (!m || m.revokedAt) throw new UnknownNodeError(nameOrPeer);
    return m;
  }

  /** The stored admission of a member (live or revoked), for a CLI that checks who answers. */
  admissionOf(peerId: string): Admission | undefined {
    const r = this.#rows.byPeer(peerId);
    return r && r.lost === null ? (JSON.parse(r.admission) as Admission) : undefined;
  }

  /** Every member, live first, by name. */
  list(opts: { includeRevoked?: boolean } = {}): Member[] {
    return this.#rows.list(Boolean(opts.includeRevoked)).map(toMember);
  }

  /** The latest refused or dropped claims, newest first. */
  conflicts(limit = 20): Conflict[] {
    return this.#rows.conflicts(limit);
  }

  /** Live member peer IDs. */
  livePeerIds(): string[] {
    return [...this.#live.keys()];
  }

  /**
   * This node is in touch with the mesh (a sync with a member completed). From then on, an
   * admission it first sees well after its token's deadline is one it would have seen in time
   * had it been real, so it is refused (admission-rules.ts). Before (a fresh or long-stopped
   * node catching up), such records are accepted on their signatures.
   */
  inSync(now = Date.now()): void {
    this.#inSyncSince ??= now;
  }

  /** Remembers where a member was last reachable and when it was last heard from. */
  touch(peerId: string, update: { addrs?: string[]; lastSeen?: number }): void {
    if (this.#live.has(peerId)) this.#rows.touch(peerId, update);
  }

  /** Merges one admission; see `judge` for the reason of a rejection. */
  accept(value: unknown, now = Date.now()): AcceptResult {
    return this.judge(value, now).result;
  }

  /**
   * Verifies and judges one admission, and stores it when it stands. A rejection carries the
   * error to show a joiner; conflicts are also kept, reported and emitted as `conflict`.
   */
  judge(value: unknown, now = Date.now()): Acceptance {
    let adm: Admission;
    let verified: VerifiedAdmission;
    try {
      adm = asAdmission(value);
      const seen = this.#judged.get(admissionKey(adm));
      if (seen !== undefined) {
        this.checks.known++;
        return this.#alreadyJudged(seen);
      }
      this.checks.verified++;
      verified = verifyAdmission(adm, this.#adminKey);
    } catch (err) {
      if (!isPlexusError(err)) throw err;
      return { result: 'rejected', error: err };
    }
    const { member } = verified;
    if (this.#revokedPeers.has(member.peerId)) {
      return {
        result: 'rejected',
        error: new AdmissionError('REVOKED', 'this node was revoked; join with a fresh data dir', 'denied'),
      };
    }
    const existing = this.#rows.byPeer(member.peerId);
    // One admission per peer: a second one (another name, another token) is never merged.
    if (existing) return this.#alreadyJudged(existing.peer_id);
    const claim: Claim = { peerId: member.peerId, name: member.name, at: member.at };
    const nameHolder = this.#rows.liveByName(member.name);
    const verdict = judgeClaim({
      verified,
      claim,
      now,
      inSyncSince: this.#inSyncSince,
      tokenRevokedAt: this.tokenRevokedAt(member.tokenId),
      tokenHolders: this.#rows.holdersOf(member.tokenId).map(rowClaim),
      nameHolder: nameHolder && rowClaim(nameHolder),
    });
    if (verdict.refuse) {
      const { error, conflict } = verdict.refuse;
      if (conflict) {
        durably(this.#db, () =>
          this.#rows.insert(adm, member, now, { code: error.code, message: error.message }),
        );
        this.#judged.set(admissionKey(adm), member.peerId);
        this.emit('conflict', { ...claimOf(member), at: now, code: error.code, message: error.message });
      }
      return { result: 'rejected', error };
    }
    const losers = verdict.displace.map((peerId) => this.#rows.byPeer(peerId)!);
    durably(this.#db, () => {
      for (const l of losers) this.#rows.markLost(l.peer_id, verdict.displaceReason(l.peer_id));
      this.#rows.insert(adm, member, now);
    });
    this.#live.set(member.peerId, member.name);
    this.#judged.set(admissionKey(adm), member.peerId);
    for (const l of losers) {
      this.#live.delete(l.peer_id);
      const lost = toMember(l);
      this.emit('conflict', { ...claimOf(lost), at: now, ...verdict.displaceReason(l.peer_id) });
      this.emit('lost', lost);
    }
    this.emit('member', this.get(member.peerId)!);
    return { result: 'added' };
  }

  #alreadyJudged(peerId: string): Acceptance {
    if (this.#live.has(peerId) || this.#revokedPeers.has(peerId)) return { result: 'known' };
    return {
      result: 'rejected',
      error: new AdmissionError(
        'REFUSED',
        'this admission was refused before (see plexus peers)',
        'conflict',
      ),
    };
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
    durably(this.#db, () => {
      this.#db
        .prepare('INSERT INTO revocations (kind, subject, at, blob) VALUES (?, ?, ?, ?)')
        .run(payload.kind, payload.subject, payload.at, JSON.stringify({ p: b.p, s: b.s }));
      if (payload.kind === 'node') this.#rows.markRevoked(payload.subject, payload.at);
    });
    this.#seenRevocations.add(b.s);
    if (payload.kind === 'node') {
      this.#live.delete(payload.subject);
      this.#revokedPeers.add(payload.subject);
    }
    this.emit('revoked', payload);
    return true;
  }

  /** Everything a peer needs to converge with us (lost claims are never passed on). */
  snapshot(): MembershipSnapshot {
    const members = this.#rows.admissions();
    const revocations = (this.#db.prepare('SELECT blob FROM revocations').all() as { blob: string }[]).map(
      (r) => JSON.parse(r.blob) as SignedBlob,
    );
    return { members, revocations, grants: this.operators.snapshot() };
  }

  /**
   * Merges a peer's snapshot: revocations first, then admissions, earliest record first, so
   * that a node learning two racing claims at once decides as one that saw them one by one.
   * Returns how many records were new.
   */
  merge(snapshot: unknown, now = Date.now()): number {
    const s = snapshot as MembershipSnapshot;
    if (typeof s !== 'object' || s === null || !Array.isArray(s.members) || !Array.isArray(s.revocations))
      return 0;
    let added = 0;
    for (const r of s.revocations) if (this.revoke(r)) added++;
    // Records judged before (nearly all of them, after the first sync) need no sorting.
    const fresh = s.members.slice(0, 100_000).filter((m) => {
      const known = isAdmissionShaped(m) && this.#judged.has(admissionKey(m));
      if (known) this.checks.known++;
      return !known;
    });
    for (const m of byRecordTime(fresh)) if (this.accept(m, now) === 'added') added++;
    for (const g of Array.isArray(s.grants) ? s.grants : []) if (this.operators.accept(g)) added++;
    return added;
  }
}

/** The identity of an admission record: all of it (payloads and signatures). */
function admissionKey(adm: Admission): string {
  return `${adm.token.p}.${adm.token.s}.${adm.member.p}.${adm.member.s}.${adm.ts}`;
}

/** True if `v` has the fields `admissionKey` reads (asAdmission checks them in full). */
function isAdmissionShaped(v: unknown): v is Admission {
  const a = v as Admission | null;
  return (
    typeof a === 'object' &&
    a !== null &&
    typeof a.token === 'object' &&
    a.token !== null &&
    typeof a.member === 'object' &&
    a.member !== null
  );
}

function claimOf(m: { peerId: string; name: string; tokenId: string }) {
  return { peerId: m.peerId, name: m.name, tokenId: m.tokenId };
}

/** Admissions sorted by their records' claimed time (unverified here; judge checks each). */
function byRecordTime(members: unknown[]): unknown[] {
  const at = (m: unknown): number => {
    try {
      const p = (m as Admission).member.p;
      const t = (JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as { at?: unknown }).at;
      return typeof t === 'number' ? t : Number.MAX_SAFE_INTEGER;
    } catch {
      return Number.MAX_SAFE_INTEGER;
    }
  };
  return members
    .slice(0, 100_000)
    .map((m) => ({ m, at: at(m) }))
    .sort((a, b) => a.at - b.at)
    .map((x) => x.m);
}
