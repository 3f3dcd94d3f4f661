/**
 * Networks, tokens and admissions made in memory, for tests of the membership rules: the same
 * constructions `plexus init`, `token create` and `join` use (src/mesh/token.ts, records.ts).
 */
import { b64u, generateSigner, type Signer } from '../../src/crypto/ed25519.ts';
import { generateNodeIdentity, type NodeIdentity } from '../../src/mesh/keys.ts';
import { Membership } from '../../src/mesh/membership.ts';
import { meshMigrations } from '../../src/mesh/migrations.ts';
import { peerIdOf } from '../../src/mesh/peer-ids.ts';
import { type Admission, signAdmission } from '../../src/mesh/records.ts';
import {
  type DecodedToken,
  decodeToken,
  encodeToken,
  networkIdOf,
  newTokenId,
  newTokenKey,
  type TokenPayload,
} from '../../src/mesh/token.ts';
import { openStore } from '../../src/store/index.ts';

/** A node identity with its peer ID. */
export interface TestIdentity {
  id: NodeIdentity;
  peerId: string;
}

/** A fresh node identity. */
export function identity(): TestIdentity {
  const id = generateNodeIdentity();
  return { id, peerId: peerIdOf(id.publicKey) };
}

/** A test network: its admin key, and helpers to mint tokens and admissions under it. */
export interface TestNetwork {
  admin: Signer;
  /** A token (text and decoded) with the given overrides; valid for an hour by default. */
  token(over?: Partial<TokenPayload>): { text: string; decoded: DecodedToken };
  /** An admission of `who` named `name` with `token` (a fresh one-use token by default). */
  admit(
    who: TestIdentity,
    name: string,
    opts?: { token?: DecodedToken; at?: number; tags?: string[] },
  ): Admission;
  /** A membership view on a fresh in-memory store. */
  membership(): Membership;
}

/** Creates a test network. */
export function testNetwork(admin = generateSigner().signer): TestNetwork {
  const net: TestNetwork = {
    admin,
    token(over = {}) {
      const now = Math.floor(Date.now() / 1000);
      const { seed, key } = newTokenKey();
      const payload: TokenPayload = {
        net: networkIdOf(admin.publicKey),
        adm: b64u(admin.publicKey),
        tk: b64u(key.publicKey),
        door: ['/ip4/127.0.0.1/tcp/7073/p2p/12D3KooWQ3xHs5bXmEV84BqS98CWgdmzEbiEJJBeZ3W3sipFhjQ1'],
        iat: now - 60,
        exp: now + 3600,
        id: newTokenId(),
        uses: 1,
        tags: [],
        ...over,
      };
      const text = encodeToken(payload, admin, seed);
      return { text, decoded: decodeToken(text, null) };
    },
    admit(who, name, opts = {}) {
      const token = opts.token ?? net.token().decoded;
      return signAdmission(
        {
          peerId: who.peerId,
          name,
          tags: opts.tags ?? token.payload.tags,
          tokenId: token.payload.id,
          at: opts.at ?? Date.now(),
        },
        who.id.signer,
        token,
      );
    },
    membership() {
      return new Membership(openStore(':memory:', meshMigrations), admin.publicKey);
    },
  };
  return net;
}
