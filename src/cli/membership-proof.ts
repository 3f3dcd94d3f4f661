/**
 * How the remote CLI decides whom to trust (issue 12). The entry agent's `GET /v1/node` answer
 * and the target's `node.resolve` answer each carry an admission, which checks back to the
 * network's admin key with nothing else (src/mesh/records.ts). The CLI accepts a peer id only
 * when such an admission names it, and the name asked for; from then on every reply frame must
 * be signed by that peer's key. A refusal names the agent that sent the answer: its URL, and
 * the name and peer id it presented. Light (node:crypto and zod), like the rest of the client.
 */
import { ed25519KeyOfPeerId } from '../crypto/peer-key.ts';
import { verifyAdmission } from '../mesh/records.ts';
import { UntrustedAgentError } from './errors.ts';
import type { NetworkTrust } from './network-record.ts';

/** A node whose membership was checked: the key its reply frames must be signed with. */
export interface ProvenNode {
  name: string;
  peerId: string;
  key: Buffer;
}

const PEER_ID_RE = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/;

/** True when `text` is an Ed25519 peer id rather than a node name. */
export function isPeerId(text: string): boolean {
  return PEER_ID_RE.test(text);
}

/** `…a1b2c3`: enough of a peer id to tell nodes apart in a one-line error. */
export function shortPeer(peerId: string): string {
  return `…${peerId.slice(-6)}`;
}

/** How an agent that answered is named in errors. */
export function describeAgent(url: string, node?: { name: string; peerId: string }): string {
  return node
    ? `the agent at ${url} (presenting itself as ${node.name}, ${shortPeer(node.peerId)})`
    : `the agent at ${url}`;
}

/**
 * Checks the entry agent's `GET /v1/node` answer: its admission must verify against the admin
 * key and name the peer id and the name the agent claims.
 */
export function proveEntry(answer: unknown, trust: NetworkTrust, url: string): ProvenNode {
  const claim = claimOf(answer);
  if (!claim)
    throw new UntrustedAgentError(
      `${describeAgent(url)} sent a malformed GET /v1/node answer; is it a plexus agent?`,
    );
  const who = describeAgent(url, claim);
  if (claim.networkId !== undefined && claim.networkId !== trust.networkId)
    throw new UntrustedAgentError(
      `${who} says it is in network ${printable(String(claim.networkId))}, but the admin key from ${trust.source} is network ${trust.networkId}'s; refusing to trust it`,
    );
  return proven(claim, claim, trust, who, 'itself');
}

/**
 * Checks a `node.resolve` answer for `wanted` (a name or a peer id), sent by `sender`: it must
 * carry an admission that verifies and names `wanted`.
 */
export function proveResolved(
  answer: unknown,
  wanted: string,
  trust: NetworkTrust,
  sender: string,
): ProvenNode {
  const claim = claimOf(answer);
  if (!claim) throw new UntrustedAgentError(`${sender} sent a malformed answer for ${printable(wanted)}`);
  const asked = isPeerId(wanted) ? { peerId: wanted } : { name: wanted };
  return proven(claim, asked, trust, sender, printable(wanted));
}

interface Claim {
  name: string;
  peerId: string;
  networkId?: unknown;
  admission?: unknown;
}

function claimOf(answer: unknown): Claim | undefined {
  const a = answer as Claim;
  if (typeof a !== 'object' || a === null || typeof a.name !== 'string' || typeof a.peerId !== 'string')
    return undefined;
  if (a.name.length > 128 || !isPeerId(a.peerId)) return undefined;
  return { name: printable(a.name), peerId: a.peerId, networkId: a.networkId, admission: a.admission };
}

/** The admission must verify, and name the claimed peer id and what was asked for. */
function proven(
  claim: Claim,
  asked: { name?: string; peerId?: string },
  trust: NetworkTrust,
  sender: string,
  what: string,
): ProvenNode {
  if (claim.admission === undefined || claim.admission === null)
    throw new UntrustedAgentError(
      `${sender} answered for ${what} without an admission to prove membership of network ${trust.networkId} (an agent older than this CLI?); refusing to trust it`,
    );
  let member: { name: string; peerId: string };
  try {
    member = verifyAdmission(claim.admission, trust.adminPublicKey).member;
  } catch (err) {
    throw new UntrustedAgentError(
      `${sender} answered for ${what} with an admission that does not check out against the admin key of network ${trust.networkId} (${(err as Error).message}); refusing to trust it`,
    );
  }
  const shown = `${member.name} (${shortPeer(member.peerId)})`;
  if (
    member.peerId !== claim.peerId ||
    member.name !== claim.name ||
    (asked.peerId !== undefined && asked.peerId !== member.peerId) ||
    (asked.name !== undefined && asked.name !== member.name)
  ) {
    throw new UntrustedAgentError(
      `${sender} answered for ${what} as ${claim.name} (${shortPeer(claim.peerId)}) but with the admission of ${shown}; refusing to trust it`,
    );
  }
  const key = ed25519KeyOfPeerId(member.peerId);
  if (!key)
    throw new UntrustedAgentError(`${sender} answered for ${what} with a peer id that is not Ed25519`);
  return { name: member.name, peerId: member.peerId, key };
}

/** Text from the network, safe to put in a one-line error. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 128);
}
