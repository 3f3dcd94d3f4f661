/**
 * How a verified admission is judged against what a node already holds. Pure: membership.ts
 * gathers the facts and applies the verdict. The rules (docs/architecture.md, Trust model):
 *
 * - **The token's deadline.** Its expiry, or its revocation if sooner. A record the token key
 *   signed after a revocation is refused. A record first seen more than CLOCK_ALLOWANCE_MS after
 *   the deadline, by a node that was in touch with the mesh before the deadline, is refused too:
 *   had it been made in time, gossip would have brought it in time. This is what stops whoever
 *   holds an old token from backdating a record into its lifetime.
 * - **Uses are counted everywhere.** A token admits at most `uses` nodes (revoked ones count).
 * - **Names are never taken.** A second live claim to a name is refused and reported.
 * - **Races are decided the same way everywhere.** Two claims that raced (two doors admitting at
 *   once) to a token's last use or to one name: the earlier record, then the smaller peer ID,
 *   wins, as long as the holder is not settled yet (known for less than SETTLE_MS here). A settled
 *   holder is never displaced, so nobody can take a name by dating a record early.
 */
import type { PlexusError } from '../core/errors.ts';
import { CLOCK_ALLOWANCE_MS, SETTLE_MS } from './constants.ts';
import { AdmissionError } from './errors.ts';
import type { VerifiedAdmission } from './records.ts';

/** A claim to a name and a token use: who, what name, and the record's signed time. */
export interface Claim {
  peerId: string;
  name: string;
  at: number;
  /** When this node first saw it (held claims only). */
  firstSeen?: number;
  revoked?: boolean;
}

/** What the judge needs to know. */
export interface ClaimFacts {
  verified: VerifiedAdmission;
  claim: Claim;
  now: number;
  /** Since when this node has been in touch with the mesh; undefined while catching up. */
  inSyncSince: number | undefined;
  tokenRevokedAt: number | undefined;
  /** Every admission (live or revoked) that used this token. */
  tokenHolders: Claim[];
  /** The live member holding this name, if any. */
  nameHolder: Claim | undefined;
}

/** The verdict: refuse (and whether it is a conflict to keep and report), or add, displacing some. */
export type ClaimVerdict =
  | { refuse: { error: PlexusError; conflict: boolean }; displace?: undefined }
  | {
      refuse?: undefined;
      displace: string[];
      displaceReason(peerId: string): { code: string; message: string };
    };

/** A stored row's claim. */
export function rowClaim(r: {
  peer_id: string;
  name: string;
  joined_at: number;
  first_seen: number;
  revoked_at: number | null;
}): Claim {
  return {
    peerId: r.peer_id,
    name: r.name,
    at: r.joined_at,
    firstSeen: r.first_seen,
    revoked: r.revoked_at !== null,
  };
}

/** True if claim `a` wins a race against `b`: the earlier record, then the smaller peer ID. */
export function ranksBefore(a: Claim, b: Claim): boolean {
  return a.at < b.at || (a.at === b.at && a.peerId < b.peerId);
}

const short = (peerId: string) => peerId.slice(-8);

/** Judges one verified admission. */
export function judgeClaim(f: ClaimFacts): ClaimVerdict {
  const { member, token } = f.verified;
  const refuse = (code: string, message: string, conflict: boolean): ClaimVerdict => ({
    refuse: { error: new AdmissionError(code, message, conflict ? 'conflict' : 'denied'), conflict },
  });
  if (member.at > f.now + CLOCK_ALLOWANCE_MS) {
    return refuse(
      'CLOCK_SKEW',
      "member record is dated more than 5 min ahead of this node's clock; fix the clock (NTP)",
      false,
    );
  }
  if (f.tokenRevokedAt !== undefined && member.at >= f.tokenRevokedAt)
    return refuse('TOKEN_REVOKED', `token ${token.id} was revoked; ask for a new one`, false);
  const deadline = Math.min(token.exp * 1000, f.tokenRevokedAt ?? Number.POSITIVE_INFINITY);
  if (f.now > deadline + CLOCK_ALLOWANCE_MS && f.inSyncSince !== undefined && f.inSyncSince <= deadline) {
    return refuse(
      'LATE_ADMISSION',
      `admission of '${member.name}' (${short(member.peerId)}) first seen ${Math.round((f.now - deadline) / 1000)} s after its token ${token.id} ${f.tokenRevokedAt !== undefined && f.tokenRevokedAt < token.exp * 1000 ? 'was revoked' : 'expired'}: a backdated record`,
      true,
    );
  }
  const settled = (c: Claim) => c.firstSeen !== undefined && f.now - c.firstSeen >= SETTLE_MS;
  const displace = new Map<string, { code: string; message: string }>();
  if (f.tokenHolders.length >= token.uses) {
    // Over the limit: the newcomer stands only if it beats the worst holder still in a race.
    const racing = f.tokenHolders.filter((h) => !h.revoked && !settled(h));
    const worst = racing.sort((a, b) => (ranksBefore(a, b) ? 1 : -1))[0];
    if (!worst || !ranksBefore(f.claim, worst)) {
      return refuse(
        'TOKEN_USED_UP',
        `token ${token.id} has no uses left (${token.uses} used); '${member.name}' (${short(member.peerId)}) was refused`,
        true,
      );
    }
    displace.set(worst.peerId, {
      code: 'TOKEN_RACE_LOST',
      message: `'${worst.name}' (${short(worst.peerId)}) lost token ${token.id}'s last use to an earlier join, ${short(member.peerId)}`,
    });
  }
  const holder = f.nameHolder;
  if (holder && !displace.has(holder.peerId)) {
    if (settled(holder) || !ranksBefore(f.claim, holder)) {
      return refuse(
        'NAME_TAKEN',
        `node name '${member.name}' is taken by ${short(holder.peerId)}; the claim of ${short(member.peerId)} was refused (pick another --name, or 'plexus revoke ${member.name}' first)`,
        true,
      );
    }
    displace.set(holder.peerId, {
      code: 'NAME_RACE_LOST',
      message: `'${holder.name}' (${short(holder.peerId)}) lost the name to an earlier join, ${short(member.peerId)}`,
    });
  }
  return { displace: [...displace.keys()], displaceReason: (peerId) => displace.get(peerId)! };
}
