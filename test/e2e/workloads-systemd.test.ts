// test-lane: side (boots systemd in containers and mostly waits on it; see scripts/test)
/**
 * Apps never run as root, under a real systemd (issue 13). The host's PID 1 is not systemd, so a
 * Debian rootfs is booted with systemd-nspawn (test/helpers/nspawn.ts) and the workload manager
 * runs inside it with the systemd backend (test/helpers/isolation.ts): the hostile app must fail
 * at every attempt there too, each app unit must pass `systemd-analyze verify` and rate at most
 * 4.0 ("OK") in `systemd-analyze security`, and the agent's own unit
 * (packaging/systemd/plexus.service) must verify (its score printed) and run the agent: it
 * deploys an app as the app's user, an agent restart leaves the app running, and a deploy under a
 * request loop fails no request (issue 18), under the process backend and under the systemd one (each
 * release a unit of its own, the old one's removed after its drain, re-adopted after an agent restart).
 * The container runs in a network namespace the test makes: the kernel redirect of declared ports
 * (the agent's nftables table) lives there, and the request loops run there (load-netns.ts);
 * a restart of the agent in the middle of a loop fails no request either.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/cluster.ts';
import { DENIED_ATTEMPTS, type IsolationReport } from '../helpers/isolation.ts';
import { startLoadInNetns } from '../helpers/load-netns.ts';
import {
  bootContainer,
  type Container,
  inBox,
  nspawnUnavailableReason,
  repoBinds,
} from '../helpers/nspawn.ts';
import { fetchNftDebs, installNftInBox, NFT_DEBS } from '../helpers/nspawn-nft.ts';

// Paths as the container sees them (test/helpers/nspawn.ts, inBox).
const REPO = inBox(resolve(import.meta.dirname, '..', '..'));
const NODE = inBox(process.execPath);
const NODE_DIR = resolve(NODE, '..');
const skip = (await nspawnUnavailableReason()) ?? fetchNftDebs();
if (skip) console.log(`# skipped: ${skip}`);
let box: Container | undefined;
const ns = `pxsd${process.pid}`;

before(async () => {
  if (skip) return;
  spawnSync('ip', ['netns', 'add', ns]);
  spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  box = await bootContainer({ netns: ns, netAdmin: true, binds: [...repoBinds(), NFT_DEBS] });
  await installNftInBox(box, inBox(NFT_DEBS));
});
after(async () => {
  await box?.stop();
  spawnSync('ip', ['netns', 'del', ns]);
});

/** GET 127.0.0.1:`port``path` inside the container's network namespace; undefined when it fails. */
function getInBox(port: number, path: string): string | undefined {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `fetch('http://127.0.0.1:${port}${path}').then(r=>r.text()).then(t=>process.stdout.write(t))`,
    ],
    { encoding: 'utf8', timeout: 10_000 },
  );
  return r.status === 0 ? r.stdout : undefined;
}

/** Runs `during` under a bounded request loop on `port` in the box's namespace; asserts no request failed. */
async function underLoad(port: number, what: string, during: () => Promise<void>) {
  const load = startLoadInNetns(ns, port, 90_000);
  await waitFor(() => load.count() >= 20, 20_000, 'the request loop to get going');
  await during();
  const n = load.count();
  await waitFor(() => load.count() >= n + 20, 20_000, `requests after the ${what}`);
  const r = await load.stop();
  assert.equal(r.failed, '', `failed requests during the ${what} (${r.sent} sent)`);
}

/** Deploys `app` again while a bounded request loop runs on its port; asserts no request failed. */
async function deployUnderLoad(
  plexus: (args: string) => Promise<{ code: number | null; stderr: string }>,
  app: string,
  port: number,
) {
  await underLoad(port, 'deploy', async () => {
    const again = await plexus(
      `deploy ${app} --dir ${REPO}/test/fixtures/workloads/app --cmd '${NODE} server.cjs'`,
    );
    assert.equal(again.code, 0, again.stderr);
  });
}

describe('apps under a real systemd', { skip }, () => {
  it('the hostile app fails at every attempt, runs as its own user, and its unit rates OK', async () => {
    const r = await box!.exec(
      [NODE, `${REPO}/test/helpers/isolation.ts`, '--backend', 'systemd', '--data', '/var/lib/plexus-iso'],
      { env: { PATH: `${NODE_DIR}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin` }, timeoutMs: 180_000 },
    );
    assert.equal(r.code, 0, `the isolation run failed: ${r.stderr.slice(-2000)}`);
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as IsolationReport;
    console.log(`hostile app under systemd: ${JSON.stringify(report.app)}`);
    assert.equal(report.status, 'running');
    assert.notEqual(report.app.uid, 0);
    assert.equal(report.app.user, 'plexus-app-pwn');
    // systemd gives a User= its own groups (initgroups): its own group at most, never root's.
    assert.ok(
      ['', String(report.app.gid)].includes(String(report.app.groups)),
      `groups: ${report.app.groups}`,
    );
    assert.equal(report.app.capEff, '0000000000000000');
    for (const k of DENIED_ATTEMPTS)
      assert.notEqual(report.app[k], 'ok', `${k} must fail, gave ${report.app[k]}`);
    assert.equal(report.socketConnections, 0);
    assert.deepEqual(report.plantedInOther, []);
    assert.equal(report.app.writeOwnData, 'ok');
    for (const [app, a] of Object.entries(report.analyze)) {
      console.log(`systemd-analyze security plexus-app-${app}.service: exposure ${a.exposure} ${a.rating}`);
      assert.equal(a.verify, '', `systemd-analyze verify plexus-app-${app}.service: ${a.verify}`);
      assert.ok(
        a.exposure !== null && a.exposure <= 4.0,
        `exposure ${a.exposure} must be <= 4.0:\n${a.table}`,
      );
    }
  });

  it("the agent's own unit verifies; its exposure is printed", async () => {
    // verify wants the ExecStart binary to exist: the repository's, where a package puts it.
    await box!.exec(['ln', '-sf', `${REPO}/bin/plexus`, '/usr/bin/plexus']);
    await box!.exec(['cp', `${REPO}/packaging/systemd/plexus.service`, '/etc/systemd/system/plexus.service']);
    await box!.exec(['systemctl', 'daemon-reload']);
    const verify = await box!.exec(['systemd-analyze', 'verify', '/etc/systemd/system/plexus.service']);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', `systemd-analyze verify: ${verify.stderr}`);
    const sec = await box!.exec(['systemd-analyze', 'security', '--no-pager', 'plexus.service']);
    const m = /Overall exposure level for \S+: ([0-9.]+) (\S+)/.exec(sec.stdout);
    console.log(
      `systemd-analyze security plexus.service (the agent, root by necessity): ${m?.[1]} ${m?.[2]}`,
    );
    assert.ok(m, sec.stdout + sec.stderr);
    // Root with 8 capabilities and /etc writable, and still "OK" (an unhardened unit is 9.6).
    assert.ok(Number(m[1]) <= 4.0, `the agent's exposure grew to ${m[1]}:\n${sec.stdout}`);
  });

  it('the agent runs under its own unit, deploys an app as its user, and a restart of the agent leaves the app running', async () => {
    const sh = (script: string) => box!.exec(['sh', '-c', script], { timeoutMs: 120_000 });
    const plexus = (args: string) => sh(`plexus ${args} --data-dir /var/lib/plexus`);
    // The checkout is read-only in the container: the agent runs from the sources, not a bundle.
    await sh(
      'mkdir -p /etc/systemd/system/plexus.service.d && ' +
        "printf '[Service]\\nEnvironment=PLEXUS_NO_BUNDLE=1\\n' > /etc/systemd/system/plexus.service.d/test.conf",
    );
    const init = await sh(
      'plexus init --name n1 --data-dir /var/lib/plexus --listen /ip4/127.0.0.1/tcp/4001',
    );
    assert.equal(init.code, 0, init.stderr);
    await sh('systemctl daemon-reload && systemctl start plexus');
    const up = await sh(
      'for i in $(seq 60); do [ -S /var/lib/plexus/plexus.sock ] && exit 0; sleep 0.5; done; exit 1',
    );
    assert.equal(up.code, 0, (await sh('journalctl -u plexus -n 30 --no-pager -o cat')).stdout);
    // Root with CAP_NET_ADMIN in a network namespace of its own, nft installed: no fallback.
    await waitFor(
      async () => (await sh('nft list table inet plexus')).code === 0,
      20_000,
      'the agent to take its table',
    );
    const off = await sh(
      "journalctl -u plexus --no-pager -o cat | grep 'zero-downtime deploys are off' || true",
    );
    assert.equal(off.stdout.trim(), '', 'the kernel redirect works in the box');
    const deploy = await plexus(
      `deploy web --dir ${REPO}/test/fixtures/workloads/app --cmd '${NODE} server.cjs' --port 8080 --health tcp:8080`,
    );
    assert.equal(deploy.code, 0, deploy.stderr);
    const pidOf = async () => JSON.parse((await plexus('apps --json')).stdout)[0]?.pid as number;
    const pid = await pidOf();
    const uid = await sh(`grep ^Uid /proc/${pid}/status`);
    assert.match(uid.stdout, /^Uid:\s+[1-9]\d*\s/, 'the app runs as its own user');
    // KillMode=process: the app lives on through an agent restart and is re-adopted.
    await sh('systemctl restart plexus');
    await sh(
      'for i in $(seq 60); do plexus apps --data-dir /var/lib/plexus >/dev/null 2>&1 && exit 0; sleep 0.5; done',
    );
    assert.equal(await pidOf(), pid, 'the same process, re-adopted');
    assert.equal((await sh('systemctl is-active plexus')).stdout.trim(), 'active');
    // Issue 18 (the process backend, under the agent's unit): a deploy under a request loop, sent
    // in the box's network namespace, fails no request.
    await deployUnderLoad(plexus, 'web', 8080);
  });

  it('with the systemd backend: a deploy under a request loop fails no request, each release has its unit, and an agent restart keeps serving', async () => {
    const sh = (script: string) => box!.exec(['sh', '-c', script], { timeoutMs: 120_000 });
    const plexus = (args: string) => sh(`plexus ${args} --data-dir /var/lib/plexus`);
    assert.equal((await plexus('rm web')).code, 0);
    await sh(
      "printf 'Environment=PLEXUS_WORKLOADS__BACKEND=systemd\\n' >> /etc/systemd/system/plexus.service.d/test.conf && " +
        'systemctl daemon-reload && systemctl restart plexus && ' +
        'for i in $(seq 60); do plexus apps --data-dir /var/lib/plexus >/dev/null 2>&1 && exit 0; sleep 0.5; done',
    );
    const first = await plexus(
      `deploy api --dir ${REPO}/test/fixtures/workloads/app --cmd '${NODE} server.cjs' --port 8081 --health http://:8081/health`,
    );
    assert.equal(first.code, 0, first.stderr);
    await deployUnderLoad(plexus, 'api', 8081);
    const units = async () =>
      (await sh('ls /etc/systemd/system')).stdout.split('\n').filter((f) => f.startsWith('plexus-app-api'));
    await waitFor(async () => (await units()).length === 1, 60_000, "the old release's unit to go").catch(
      async (err: Error) => {
        const log = await sh('journalctl -u plexus -n 40 --no-pager -o cat');
        throw new Error(`${err.message}: ${(await units()).join(' ')}\n${log.stdout}`);
      },
    );
    const [unit] = await units();
    assert.match(unit, /^plexus-app-api\.\d+\.service$/);
    assert.equal((await sh(`systemctl is-active ${unit}`)).stdout.trim(), 'active');
    // The agent restarts in the middle of a request loop: the unit keeps running, and the kernel
    // keeps redirecting the declared port to it, so no request fails.
    const before = JSON.parse(getInBox(8081, '/info') ?? '{}').pid;
    await underLoad(8081, 'agent restart', async () => {
      await sh(
        'systemctl restart plexus && ' +
          'for i in $(seq 60); do plexus apps --data-dir /var/lib/plexus >/dev/null 2>&1 && exit 0; sleep 0.5; done',
      );
    });
    assert.equal(JSON.parse(getInBox(8081, '/info') ?? '{}').pid, before, 'the same release, re-adopted');
    const nft = await sh('nft list table inet plexus');
    assert.equal((nft.stdout.match(/redirect to/g) ?? []).length, 2, `one rule per hook:\n${nft.stdout}`);
  });
});
