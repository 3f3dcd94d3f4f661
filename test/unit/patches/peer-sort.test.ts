/**
 * The installed @libp2p/peer-store and @libp2p/peer-record carry their patches under patches/:
 * they sort addresses and protocol names in code-unit order, not with `localeCompare` (which
 * loads ICU's collation, ~2.4 MB of RSS: bench/patches.ts). Code-unit order puts 'B' before 'a';
 * a locale puts it after, so each test fails on an unpatched package.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';

const LIBP2P = resolve(import.meta.dirname, '..', '..', '..', 'node_modules', '@libp2p');
/** Loads a module of an installed package by path (these files are not in its exports). */
const load = (path: string) => import(pathToFileURL(join(LIBP2P, path)).href);

describe('peer store and peer record sorts', () => {
  it('leave no localeCompare call in the code Node runs', () => {
    for (const pkg of ['peer-store', 'peer-record']) {
      const dir = join(LIBP2P, pkg, 'dist', 'src');
      for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
        if (f.endsWith('.js'))
          assert.doesNotMatch(readFileSync(join(dir, f), 'utf8'), /\.localeCompare\(/, f);
      }
    }
  });

  it('peer-record compares address lists in code-unit order', async () => {
    const { arrayEquals } = await load('peer-record/dist/src/peer-record/utils.js');
    const addr = (s: string) => ({ toString: () => s, equals: (o: object) => `${o}` === s });
    const names = ['/dns4/a.example', '/dns4/B.example', '/ip4/10.0.0.1', '/ip4/9.0.0.1'];
    const a = names.map(addr);
    const b = [...names].reverse().map(addr);
    assert.equal(arrayEquals(a, b), true);
    // It sorts both in place.
    assert.deepEqual(b.map(String), ['/dns4/B.example', '/dns4/a.example', '/ip4/10.0.0.1', '/ip4/9.0.0.1']);
  });

  it('peer-store keeps addresses in code-unit order', async () => {
    const { dedupeFilterAndSortAddresses } = await load('peer-store/dist/src/utils/dedupe-addresses.js');
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'));
    const addrs = ['/dns4/a.example/tcp/1', '/dns4/B.example/tcp/1'].map((s) => ({
      multiaddr: multiaddr(s),
    }));
    const out = (await dedupeFilterAndSortAddresses(peerId, async () => true, addrs, [], {})) as {
      multiaddr: Uint8Array;
    }[];
    assert.deepEqual(
      out.map((x) => multiaddr(x.multiaddr).toString()),
      ['/dns4/B.example/tcp/1', '/dns4/a.example/tcp/1'],
    );
  });
});
