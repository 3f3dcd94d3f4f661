/**
 * The Ed25519 public key inside a libp2p peer ID string (`12D3KooW…`), decoded with node:crypto
 * only, so the CLI can check a target's signed reply frames without loading libp2p.
 * An Ed25519 peer ID is base58btc of the identity multihash of the protobuf public key:
 * `00 24 | 08 01 12 20 | 32 key bytes`.
 */

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const PREFIX = Buffer.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);

function decodeBase58(text: string): Buffer | undefined {
  if (text.length === 0 || text.length > 128) return undefined;
  let n = 0n;
  for (const ch of text) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return undefined;
    n = n * 58n + BigInt(v);
  }
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const body = n === 0n ? Buffer.alloc(0) : Buffer.from(hex, 'hex');
  let zeros = 0;
  while (zeros < text.length && text[zeros] === '1') zeros++;
  return Buffer.concat([Buffer.alloc(zeros), body]);
}

/** The raw 32-byte Ed25519 key of a peer ID string, or undefined if it is not an Ed25519 peer ID. */
export function ed25519KeyOfPeerId(peerId: string): Buffer | undefined {
  const bytes = decodeBase58(peerId);
  if (!bytes || bytes.length !== PREFIX.length + 32 || !bytes.subarray(0, PREFIX.length).equals(PREFIX))
    return undefined;
  return bytes.subarray(PREFIX.length);
}
