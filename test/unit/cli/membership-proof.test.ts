/**
 * What the remote CLI accepts as proof of who answers (src/cli/membership-proof.ts): an
 * admission that checks back to the recorded admin key and names the peer id and the name
 * claimed, and asked for. Every other answer is refused with UNTRUSTED_AGENT, naming the agent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { proveEntry, proveResolved, shortPeer } from '../../../src/cli/membership-proof.ts';
import type { NetworkTrust } from '../../../src/cli/network-record.ts';
import { networkIdOf } from '../../../src/mesh/token.ts';
import { identity, testNetwork } from '../../helpers/admissions.ts';
import { codeOf } from '../../helpers/errors.ts';

const net = testNetwork();
const trust: NetworkTrust = {
  adminPublicKey: net.admin.publicKey,
  networkId: networkIdOf(net.admin.publicKey),
  source: 'test',
};
const URL = 'http://10.0.0.5:7071';
const n1 = identity();
const n2 = identity();
const self = {
  name: 'n1',
  peerId: n1.peerId,
  networkId: trust.networkId,
  admission: net.admit(n1, 'n1'),
};
const sender = `the agent at ${URL} (presenting itself as n1, ${shortPeer(self.peerId)})`;

describe('membership proof', () => {
  it("accepts an entry whose admission names it, and a target's admission asked for by name or peer id", () => {
    const entry = proveEntry(self, trust, URL);
    assert.deepEqual([entry.name, entry.peerId], ['n1', self.peerId]);
    assert.deepEqual(entry.key, n1.id.publicKey);
    const answer = { name: 'n2', peerId: n2.peerId, admission: net.admit(n2, 'n2') };
    assert.equal(proveResolved(answer, 'n2', trust, sender).peerId, answer.peerId);
    assert.equal(proveResolved(answer, answer.peerId, trust, sender).name, 'n2');
  });

  it('refuses an entry without an admission, from another network, or showing another node', () => {
    const other = testNetwork();
    const stranger = identity();
    const bad: [string, unknown][] = [
      ['no admission', { ...self, admission: undefined }],
      ['null admission', { ...self, admission: null }],
      ['another admin key', { ...self, admission: other.admit(n1, 'n1') }],
      ['another network id', { ...self, networkId: networkIdOf(other.admin.publicKey) }],
      ["another node's admission", { ...self, peerId: stranger.peerId }],
      ['another name', { ...self, name: 'web-2' }],
      [
        'a tampered admission',
        {
          ...self,
          admission: {
            ...self.admission,
            ts: self.admission.ts.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')),
          },
        },
      ],
      [
        'an oversized admission',
        { ...self, admission: { ...self.admission, member: { p: 'A'.repeat(100_000), s: 'A' } } },
      ],
      ['not an object', 'n1'],
      ['no peer id', { name: 'n1' }],
      ['a non-Ed25519 peer id', { ...self, peerId: 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N' }],
    ];
    for (const [what, answer] of bad) {
      assert.equal(
        codeOf(() => proveEntry(answer, trust, URL)),
        'UNTRUSTED_AGENT',
        what,
      );
      assert.throws(() => proveEntry(answer, trust, URL), new RegExp(URL.replaceAll('.', '\\.')), what);
    }
  });

  it('refuses a node.resolve answer that does not prove the node asked for', () => {
    const n2peer = n2.peerId;
    const bad: [string, unknown, string][] = [
      ['no admission', { name: 'n2', peerId: n2peer }, 'n2'],
      ["n1's admission for n2", { name: 'n2', peerId: self.peerId, admission: self.admission }, 'n2'],
      [
        "n1's admission, honestly labelled",
        { name: 'n1', peerId: self.peerId, admission: self.admission },
        'n2',
      ],
      [
        'another network names n2',
        { name: 'n2', peerId: n2peer, admission: testNetwork().admit(n2, 'n2') },
        'n2',
      ],
      [
        'a peer id not asked for',
        { name: 'n2', peerId: n2peer, admission: net.admit(n2, 'n2') },
        self.peerId,
      ],
    ];
    for (const [what, answer, wanted] of bad) {
      assert.equal(
        codeOf(() => proveResolved(answer, wanted, trust, sender)),
        'UNTRUSTED_AGENT',
        what,
      );
      assert.throws(
        () => proveResolved(answer, wanted, trust, sender),
        (err: Error) => err.message.startsWith(sender),
      );
    }
  });

  it('keeps text from the network on one printable line', () => {
    const answer = { ...self, name: 'n1\n\u001b[2Jplexus: all good', admission: null };
    assert.throws(
      () => proveEntry(answer, trust, URL),
      (err: Error) => !/[\n\u001b]/.test(err.message),
    );
  });
});
