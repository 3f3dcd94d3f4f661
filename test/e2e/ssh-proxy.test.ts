/**
 * Plain ssh over the mesh (issue 16): `ssh -o ProxyCommand='plexus ssh-proxy %h'` from n1 reaches
 * the sshd n2 exposes as its `ssh` service (a private sshd on loopback) and runs `hostname`; a
 * node that exposes none is refused with the line that says how to expose it; `ssh-config`
 * prints the `Host *.plexus` block.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type PrivateSshd, privateSshd, SSH_CLIENT_OPTS } from '../../bench/private-sshd.ts';
import { type Cluster, PLEXUS, startCluster } from '../helpers/cluster.ts';

describe('plexus ssh-proxy', () => {
  let cluster: Cluster;
  let sshd: PrivateSshd;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'plexus-ssh-proxy-'));
    cluster = await startCluster(2);
    sshd = await privateSshd(dir);
  });
  after(async () => {
    sshd?.stop();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ssh = (host: string) =>
    spawnSync(
      'ssh',
      [
        '-o',
        `ProxyCommand=${PLEXUS} --data-dir ${cluster.nodes[0].dataDir} ssh-proxy %h`,
        ...SSH_CLIENT_OPTS,
        '-o',
        'BatchMode=yes',
        '-i',
        sshd.key,
        `${process.env.USER ?? 'root'}@${host}`,
        'hostname',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );

  it('refuses a node that exposes no ssh service, saying how to expose it', () => {
    const r = ssh('n2.plexus');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /plexus expose ssh 22/);
  });

  it('runs hostname on the node’s sshd through the mesh', async () => {
    const n2 = cluster.byName('n2');
    const ex = await n2.run(['expose', 'ssh', String(sshd.port)]);
    assert.equal(ex.code, 0, ex.stderr);
    const r = ssh('n2.plexus');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), hostname());
  });

  it('prints a Host *.plexus block', () => {
    const out = execFileSync(PLEXUS, ['ssh-config'], { encoding: 'utf8' });
    assert.match(out, /^Host \*\.plexus$/m);
    assert.match(out, /^ {4}ProxyCommand plexus ssh-proxy %h$/m);
  });
});
