/**
 * Swarm-key rotation on one node's disk and in its key switch: the admin makes a key, a member
 * takes it only with the admin's record, keeps it across a restart (and a crash mid-switch),
 * switches at its time; the key server answers live members only.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataPaths } from '../../../src/config/paths.ts';
import type { Signer } from '../../../src/crypto/ed25519.ts';
import { silentLogger } from '../../../src/logging/index.ts';
import { ROTATION_LEAD_MS } from '../../../src/mesh/constants.ts';
import { formatSwarmKey, generateNodeIdentity, loadNodeKeys, writeNodeKeys } from '../../../src/mesh/keys.ts';
import { peerIdOf } from '../../../src/mesh/peer-ids.ts';
import { signRevocation } from '../../../src/mesh/records.ts';
import { keyIdOf, signRotation, verifyKeyGrant } from '../../../src/mesh/rotation-record.ts';
import { initNetwork } from '../../../src/mesh/setup.ts';
import { SwarmKeySwitch } from '../../../src/mesh/swarm-key.ts';
import { SwarmRotation } from '../../../src/mesh/swarm-rotation.ts';
import { testNetwork } from '../../helpers/admissions.ts';
import { codeOf } from '../../helpers/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'plexus-rotation-'));
after(() => rmSync(root, { recursive: true, force: true }));

const adminPaths = dataPaths(join(root, 'admin'));
initNetwork({ paths: adminPaths, name: 'n1' });
const adminKeys = loadNodeKeys(adminPaths);
const admin = adminKeys.admin as Signer;

const net = testNetwork(admin);

const member = generateNodeIdentity();
const memberPeer = peerIdOf(member.publicKey);
const revokedNode = generateNodeIdentity();
const revokedPeer = peerIdOf(revokedNode.publicKey);

/** A membership knowing `member` (live) and `revokedNode` (revoked). */
function membership() {
  const m = net.membership();
  assert.equal(m.accept(net.admit({ id: member, peerId: memberPeer }, 'n2')), 'added');
  assert.equal(m.accept(net.admit({ id: revokedNode, peerId: revokedPeer }, 'n3')), 'added');
  m.revoke(signRevocation({ kind: 'node', subject: revokedPeer, at: Date.now() }, admin));
  return m;
}

/** A rotation service over a data dir, as the mesh builds it. */
function serviceOn(paths: ReturnType<typeof dataPaths>) {
  const keys = loadNodeKeys(paths);
  const swarmKey = new SwarmKeySwitch(keys.psk, keys.swarmEpoch);
  const rotation = new SwarmRotation(
    { paths, keys },
    { swarmKey, membership: membership(), logger: silentLogger() },
  );
  return { rotation, swarmKey };
}

const memberPaths = dataPaths(join(root, 'member'));
writeNodeKeys(memberPaths, {
  identity: member,
  psk: loadNodeKeys(adminPaths).psk,
  network: { ...adminKeys.network, bootstrap: [] },
});

describe('swarm-key rotation', () => {
  const a = serviceOn(adminPaths);
  const oldPsk = Buffer.from(a.swarmKey.psk);

  it('the admin makes epoch 1, keeps it pending on disk, and still uses the old key', () => {
    const r = a.rotation.rotate();
    assert.equal(r.epoch, 1);
    assert.ok(r.switchAt - Date.now() > ROTATION_LEAD_MS - 1000);
    assert.deepEqual(r.revoked, [revokedPeer], 'the rotation names the revoked node');
    assert.equal(a.rotation.heldEpoch, 1);
    assert.equal(a.swarmKey.epoch, 0);
    assert.ok(a.swarmKey.psk.equals(oldPsk));
    const state = JSON.parse(readFileSync(adminPaths.swarmRotation, 'utf8'));
    assert.equal(keyIdOf(Buffer.from(state.next.psk, 'hex')), r.keyId);
    assert.equal(readFileSync(adminPaths.swarmKey, 'utf8'), formatSwarmKey(oldPsk));
  });

  it('the key server refuses a stranger, a revoked node, and a member that holds no older key', () => {
    assert.equal(
      codeOf(() => a.rotation.keyFor(peerIdOf(generateNodeIdentity().publicKey), 0)),
      'NOT_A_MEMBER',
    );
    assert.equal(
      codeOf(() => a.rotation.keyFor(revokedPeer, 0)),
      'NOT_A_MEMBER',
    );
    assert.equal(
      codeOf(() => a.rotation.keyFor(memberPeer, 1)),
      'NO_NEWER_KEY',
    );
  });

  it('a member takes the key with its record, and keeps it pending across a restart', () => {
    const reply = a.rotation.keyFor(memberPeer, 0);
    assert.equal(reply.ok, true);
    const m = serviceOn(memberPaths);
    m.rotation.adopt(verifyKeyGrant(reply, adminKeys.adminPublicKey, m.rotation.heldEpoch));
    assert.equal(m.rotation.heldEpoch, 1);
    assert.equal(m.swarmKey.epoch, 0);
    m.rotation.stop();
    const again = serviceOn(memberPaths);
    assert.equal(again.rotation.heldEpoch, 1, 'the pending key survived the restart');
    assert.equal(again.rotation.status().pending?.epoch, 1);
    again.rotation.stop();
  });

  it('a key whose time has passed is switched to at once, on disk and for new connections', () => {
    const m = serviceOn(memberPaths);
    const now = Date.now();
    const psk = randomBytes(32);
    const rotation = signRotation(
      { epoch: 2, keyId: keyIdOf(psk), switchAt: now - 1, at: now - 1000, revoked: [] },
      admin,
    );
    m.rotation.adopt(verifyKeyGrant({ psk: psk.toString('hex'), rotation }, adminKeys.adminPublicKey, 1));
    assert.equal(m.swarmKey.epoch, 2);
    assert.ok(m.swarmKey.psk.equals(psk));
    assert.equal(readFileSync(memberPaths.swarmKey, 'utf8'), formatSwarmKey(psk));
    assert.equal(loadNodeKeys(memberPaths).swarmEpoch, 2);
    assert.equal(m.rotation.grant(memberPeer).rotation !== undefined, true, 'a door can vouch for it');
    m.rotation.stop();
    const again = serviceOn(memberPaths);
    assert.equal(again.swarmKey.epoch, 2);
    assert.equal(again.rotation.status().pending, null);
    again.rotation.stop();
  });

  it('finishes a switch that a crash cut short after swarm.key was written', () => {
    const paths = dataPaths(join(root, 'crash'));
    writeNodeKeys(paths, { identity: generateNodeIdentity(), psk: oldPsk, network: adminKeys.network });
    const psk = randomBytes(32);
    const now = Date.now();
    const rotation = signRotation(
      { epoch: 1, keyId: keyIdOf(psk), switchAt: now + 5000, at: now, revoked: [] },
      admin,
    );
    writeFileSync(paths.swarmRotation, JSON.stringify({ next: { psk: psk.toString('hex'), rotation } }));
    writeFileSync(paths.swarmKey, formatSwarmKey(psk));
    const s = serviceOn(paths);
    assert.equal(s.swarmKey.epoch, 1);
    assert.equal(loadNodeKeys(paths).swarmEpoch, 1);
    assert.equal(s.rotation.status().pending, null);
    s.rotation.stop();
  });

  it('ignores a pending key on disk that the admin did not sign', () => {
    const paths = dataPaths(join(root, 'forged'));
    writeNodeKeys(paths, { identity: generateNodeIdentity(), psk: oldPsk, network: adminKeys.network });
    const psk = randomBytes(32);
    const now = Date.now();
    const rotation = signRotation(
      { epoch: 5, keyId: keyIdOf(psk), switchAt: now, at: now, revoked: [] },
      generateNodeIdentity().signer,
    );
    writeFileSync(paths.swarmRotation, JSON.stringify({ next: { psk: psk.toString('hex'), rotation } }));
    const s = serviceOn(paths);
    assert.equal(s.rotation.heldEpoch, 0);
    assert.ok(s.swarmKey.psk.equals(oldPsk));
    s.rotation.stop();
  });

  it('a member cannot rotate: only the admin key signs a rotation', () => {
    const m = serviceOn(memberPaths);
    assert.equal(
      codeOf(() => m.rotation.rotate()),
      'ADMIN_KEY_REQUIRED',
    );
    m.rotation.stop();
  });

  it('the door refuses the key in use to a node the rotation names as revoked', () => {
    const m = serviceOn(memberPaths);
    const now = Date.now();
    const psk = randomBytes(32);
    const rotation = signRotation(
      { epoch: 3, keyId: keyIdOf(psk), switchAt: now, at: now, revoked: [revokedPeer] },
      admin,
    );
    m.rotation.adopt(verifyKeyGrant({ psk: psk.toString('hex'), rotation }, adminKeys.adminPublicKey, 2));
    assert.equal(
      codeOf(() => m.rotation.grant(revokedPeer)),
      'REVOKED',
    );
    assert.equal(m.rotation.grant(memberPeer).epoch, 3);
    m.rotation.stop();
    a.rotation.stop();
  });
});
