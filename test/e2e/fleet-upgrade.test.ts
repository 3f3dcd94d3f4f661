// test-lane: side (boots systemd in containers and mostly waits on it; see scripts/test)
/**
 * A fleet upgrade over the mesh (issue 15): three nodes, each a Debian rootfs booted with
 * systemd-nspawn and installed from the release tarball, sharing the host's network on loopback
 * ports of their own. `plexus upgrade --node all --file B` on the first node sends the signed
 * release over the mesh to each node in turn; the second node is made to fail its health check
 * on the new version (its unit refuses to start from 9.0.1), so it rolls back by itself, the
 * fleet upgrade stops there and leaves the last node alone, and the table says so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bootContainer, type Container, inBox, nspawnUnavailableReason } from '../helpers/nspawn.ts';
import { buildTestReleases, type TestReleases } from '../helpers/releases.ts';

const skip = await nspawnUnavailableReason();
if (skip) console.log(`# skipped: ${skip}`);
const PLEXUS = '/usr/local/bin/plexus';
// Three nodes on the host's loopback: ports of their own, away from the defaults other tests use.
const base = 27_000 + (process.pid % 500) * 10;
const boxes: Container[] = [];
let rel: TestReleases | undefined;

const run = async (box: Container, args: string[], timeoutMs = 180_000) => {
  const r = await box.exec(args, { timeoutMs });
  return { ...r, out: `${r.stdout}${r.stderr}` };
};
const versionOf = async (box: Container) =>
  JSON.parse((await run(box, [PLEXUS, 'status', '--json'])).stdout || '{}').version as string;

async function install(box: Container, i: number, how: string[]) {
  await run(box, ['tar', 'xzf', inBox(rel!.a.tarball), '-C', '/root']);
  const r = await run(box, [
    '/root/plexus-9.0.0/install.sh',
    ...how,
    '--listen',
    `/ip4/127.0.0.1/tcp/${base + i}`,
    '--api',
    `127.0.0.1:${base + 5 + i}`,
    '--socks',
    'off',
  ]);
  assert.equal(r.code, 0, r.out);
}

before(
  async () => {
    if (skip) return;
    rel = buildTestReleases();
    for (let i = 0; i < 3; i++)
      boxes.push(await bootContainer({ binds: [rel.root], name: `plexus-fleet-${process.pid}-${i}` }));
    // Building the releases (cached per source tree) takes minutes on a busy machine.
  },
  { timeout: 1_200_000 },
);
after(async () => {
  for (const b of boxes) await b.stop();
});

describe('a fleet upgrade over the mesh', { skip }, () => {
  it('three installed nodes form a mesh', async () => {
    const [n1, n2, n3] = boxes;
    await install(n1, 0, ['--init', 'n1']);
    for (const [box, i] of [
      [n2, 1],
      [n3, 2],
    ] as const) {
      const t = await run(n1, [PLEXUS, 'token', 'create', '--json']);
      assert.equal(t.code, 0, t.out);
      const t0 = Date.now();
      await install(box, i, ['--token', JSON.parse(t.stdout).token, '--name', `n${i + 1}`]);
      const st = JSON.parse((await run(box, [PLEXUS, 'status', '--json'])).stdout);
      console.log(
        `install n${i + 1}: tarball -> active and in the mesh (${st.peers.online} peers online) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    const deadline = Date.now() + 60_000;
    let online = 0;
    while (Date.now() < deadline && online < 2) {
      online = JSON.parse((await run(n1, [PLEXUS, 'status', '--json'])).stdout).peers.online;
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal(online, 2, 'n1 sees both peers');
  });

  it('stops at the node that fails its health check, which rolls back; the table shows it', async () => {
    const [n1, n2, n3] = boxes;
    // n3 cannot start 9.0.1: its unit refuses that release (a host-specific failure).
    await run(n3, ['mkdir', '-p', '/etc/systemd/system/plexus.service.d']);
    await run(n3, [
      'sh',
      '-c',
      `printf '[Service]\\nExecStartPre=/bin/sh -c "! readlink /opt/plexus/current | grep -q 9.0.1"\\n' > /etc/systemd/system/plexus.service.d/refuse-9.0.1.conf && systemctl daemon-reload`,
    ]);
    const t0 = Date.now();
    const r = await run(
      n1,
      [PLEXUS, 'upgrade', '--node', 'all', '--file', inBox(rel!.b.tarball), '--max-parallel', '1'],
      600_000,
    );
    console.log(`fleet upgrade (${((Date.now() - t0) / 1000).toFixed(0)} s):\n${r.stdout}${r.stderr}`);
    if (!/\bn2\s+9\.0\.0\s+9\.0\.1\s+ok/.test(r.stdout)) {
      // What n2 saw, to tell a transport failure from a failed upgrade.
      const logs = await run(n2, [
        'sh',
        '-c',
        'tail -n 30 /var/lib/plexus/logs/agent.log; cat /var/lib/plexus/upgrades/status.json; ls -la /var/lib/plexus/upgrades; journalctl -n 40 --no-pager',
      ]);
      console.log(`n2 after the fleet upgrade:\n${logs.out}`);
    }
    assert.equal(r.code, 1, r.out);
    const row = (node: string) => r.stdout.split('\n').find((l) => l.startsWith(`${node} `)) ?? '';
    assert.match(row('n2'), /9\.0\.0\s+9\.0\.1\s+ok/);
    assert.match(row('n3'), /9\.0\.0\s+9\.0\.0\s+rolled back/);
    assert.match(row('n1'), /skipped/);
    assert.equal(await versionOf(n2), '9.0.1');
    assert.equal(await versionOf(n3), '9.0.0');
    assert.equal((await run(n3, ['systemctl', 'is-active', 'plexus'])).stdout.trim(), 'active');
    assert.equal(await versionOf(n1), '9.0.0');
  });

  it('a node refuses a release its own release key did not sign', async () => {
    const [n1] = boxes;
    await run(n1, ['sh', '-c', `mkdir -p /root/forged && cp ${inBox(rel!.b.dir)}/* /root/forged/`]);
    await run(n1, [PLEXUS, 'release', 'keygen', '/root/other.key']);
    await run(n1, [PLEXUS, 'release', 'sign', '--release-key', '/root/other.key', '/root/forged/SHA256SUMS']);
    const r = await run(n1, [
      PLEXUS,
      'upgrade',
      '--node',
      'n3',
      '--file',
      `/root/forged/plexus-9.0.1-linux-${process.arch}.tar.gz`,
    ]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.stdout, /n3\s.*refused: SHA256SUMS is signed by release key/);
  });
});
