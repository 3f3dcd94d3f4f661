/** Peer ID ↔ Ed25519 public key, for verifying records signed by node keys. */
import { publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id';

/** The peer ID string of a raw Ed25519 public key. */
export function peerIdOf(publicKey: Uint8Array): string {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString();
}

/** The raw Ed25519 public key inside a peer ID string, or undefined if it is not one. */
export function publicKeyOfPeerId(peerId: string): Uint8Array | undefined {
  try {
    const id = peerIdFromString(peerId);
    if (id.type !== 'Ed25519' || !id.publicKey) return undefined;
    return id.publicKey.raw;
  } catch {
    return undefined;
  }
}
