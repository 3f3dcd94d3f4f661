/**
 * The network's admin key as the remote CLI finds it (src/cli/network-record.ts): from
 * KEY.network, a network.json beside the key, or the data dir; and every way such a file can be
 * bad (planted, edited, oversized, writable by others) is an error, never a silent fallback.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { adminKeyFromArg, networkTrustOf, writeNetworkRecord } from '../../../src/cli/network-record.ts';
import { b64u, generateSigner, writeKeyFile } from '../../../src/crypto/ed25519.ts';
import { networkIdOf } from '../../../src/mesh/token.ts';
import { codeOf } from '../../helpers/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'plexus-netrec-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh folder with an operator key in it, and an empty data dir. */
function setup() {
  const dir = join(root, String(n++));
  mkdirSync(join(dir, 'data', 'keys'), { recursive: true });
  const key = join(dir, 'op.key');
  const { signer, seed } = generateSigner();
  writeKeyFile(key, seed, signer);
  return { dir, key, data: join(dir, 'data') };
}
const adminA = generateSigner().signer.publicKey;
const adminB = generateSigner().signer.publicKey;
const networkJson = (admin: Buffer) =>
  JSON.stringify({
    networkId: networkIdOf(admin),
    adminPublicKey: b64u(admin),
    bootstrap: [],
    createdAt: 1,
  });

describe('network records', () => {
  it('with nothing recorded, the error names the command that records it', () => {
    const t = setup();
    assert.equal(
      codeOf(() => networkTrustOf(t.key, t.data)),
      'ADMIN_KEY_UNKNOWN',
    );
    assert.throws(() => networkTrustOf(t.key, t.data), /plexus operator use .*op\.key --admin/);
  });

  it('KEY.network wins over a network.json beside the key, which wins over the data dir', () => {
    const t = setup();
    writeFileSync(join(t.data, 'keys', 'network.json'), networkJson(adminB), { mode: 0o600 });
    assert.deepEqual(networkTrustOf(t.key, t.data).adminPublicKey, adminB);
    writeFileSync(join(t.dir, 'network.json'), networkJson(adminA), { mode: 0o600 });
    assert.deepEqual(networkTrustOf(t.key, t.data).adminPublicKey, adminA);
    const r = writeNetworkRecord(t.key, adminB);
    assert.equal(r.networkId, networkIdOf(adminB));
    assert.equal(statSync(r.path).mode & 0o777, 0o644);
    const trust = networkTrustOf(t.key, t.data);
    assert.deepEqual([trust.adminPublicKey, trust.source], [adminB, `${t.key}.network`]);
  });

  it('re-recording says which network it replaced', () => {
    const t = setup();
    assert.equal(writeNetworkRecord(t.key, adminA).replaced, undefined);
    assert.equal(writeNetworkRecord(t.key, adminA).replaced, undefined);
    assert.equal(writeNetworkRecord(t.key, adminB).replaced, networkIdOf(adminA));
    assert.deepEqual(networkTrustOf(t.key, t.data).adminPublicKey, adminB);
  });

  it('an edited, corrupt, oversized or non-file record is refused, not skipped', () => {
    const t = setup();
    // A data dir that would otherwise answer: a bad record must not fall through to it.
    writeFileSync(join(t.data, 'keys', 'network.json'), networkJson(adminA), { mode: 0o600 });
    const rec = `${t.key}.network`;
    const cases: [string, string | (() => void)][] = [
      [
        'edited key',
        JSON.stringify({
          type: 'plexus-network',
          networkId: networkIdOf(adminA),
          adminPublicKey: b64u(adminB),
        }),
      ],
      ['not JSON', '{"type":'],
      ['no key', JSON.stringify({ type: 'plexus-network', networkId: networkIdOf(adminA) })],
      ['short key', JSON.stringify({ networkId: networkIdOf(adminA), adminPublicKey: 'abc' })],
      [
        'oversized',
        `${' '.repeat(5000)}${JSON.stringify({ networkId: networkIdOf(adminA), adminPublicKey: b64u(adminA) })}`,
      ],
    ];
    for (const [what, text] of cases) {
      rmSync(rec, { recursive: true, force: true });
      writeFileSync(rec, text as string, { mode: 0o644 });
      assert.equal(
        codeOf(() => networkTrustOf(t.key, t.data)),
        'NETWORK_RECORD_INVALID',
        what,
      );
    }
    rmSync(rec);
    mkdirSync(rec);
    assert.equal(
      codeOf(() => networkTrustOf(t.key, t.data)),
      'NETWORK_RECORD_INVALID',
      'a directory',
    );
    rmSync(rec, { recursive: true });
  });

  it('a record that others can write, or that another user owns, is refused', (t) => {
    const s = setup();
    const r = writeNetworkRecord(s.key, adminA);
    chmodSync(r.path, 0o666);
    assert.equal(
      codeOf(() => networkTrustOf(s.key, s.data)),
      'NETWORK_RECORD_INVALID',
    );
    chmodSync(r.path, 0o644);
    assert.deepEqual(networkTrustOf(s.key, s.data).adminPublicKey, adminA);
    if (process.getuid?.() !== 0) {
      t.diagnostic('not root: cannot give the record to another user; the ownership check is not exercised');
      return;
    }
    chownSync(r.path, 65534, 65534);
    assert.equal(
      codeOf(() => networkTrustOf(s.key, s.data)),
      'NETWORK_RECORD_INVALID',
    );
  });

  it('--admin takes a public key, a .pub or key file, a network.json, or a data dir', () => {
    const t = setup();
    const { signer, seed } = generateSigner();
    const adminKey = join(t.dir, 'admin.key');
    writeKeyFile(adminKey, seed, signer);
    writeFileSync(`${adminKey}.pub`, JSON.stringify({ publicKey: b64u(signer.publicKey) }), { mode: 0o644 });
    writeFileSync(join(t.data, 'keys', 'network.json'), networkJson(signer.publicKey), { mode: 0o600 });
    for (const arg of [
      b64u(signer.publicKey),
      adminKey,
      `${adminKey}.pub`,
      join(t.data, 'keys', 'network.json'),
      t.data,
      join(t.data, 'keys'),
    ]) {
      assert.deepEqual(adminKeyFromArg(arg), signer.publicKey, arg);
    }
    const junk = join(t.dir, 'junk');
    writeFileSync(junk, 'hello', { mode: 0o644 });
    for (const arg of [junk, join(t.dir, 'missing'), 'not-a-key', join(t.dir, 'data', 'apps')])
      assert.throws(() => adminKeyFromArg(arg), { name: 'UsageError' }, arg);
  });
});
