// test-lane: side (boots systemd in a container and mostly waits on apt inside it; see scripts/test)
/**
 * Services under a real systemd (issue 18). The host's PID 1 is not systemd, so the cached Debian
 * rootfs is booted with systemd-nspawn (test/helpers/nspawn.ts) and the agent runs there under its
 * own unit (packaging/systemd/plexus.service, ProtectSystem=strict): `service install` must run apt
 * in a transient unit, enable and start the package's own unit, and keep it through an agent
 * restart; `service rm` stops and disables it and removes the packages; PostgreSQL `--for APP`
 * puts credentials the app connects with into its env; `edge install` runs caddy.service with
 * plexus's drop-in and serves an app at https://app.test. One container for the file. The container
 * shares the host's network (apt reaches the machine's configured mirror), so Redis's and
 * PostgreSQL's ports must be free on the host.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../helpers/cluster.ts';
import { bootContainer, type Container, inBox, nspawnUnavailableReason, ROOTFS } from '../helpers/nspawn.ts';

const execFileP = promisify(execFile);

const REPO = inBox(resolve(import.meta.dirname, '..', '..'));
const NODE = inBox(process.execPath);
const DATA = '/var/lib/plexus';
/** Packages apt downloaded in earlier runs, kept beside the cached rootfs (outside the repository). */
const APT_ARCHIVES = join(dirname(ROOTFS), 'apt-archives');

/** A port in 20000–32767 (below the ephemeral range) that nothing listens on now. */
async function fixedFreePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    if (await portFree(port)) return port;
  }
  return freePort();
}

/** Resolves true when nothing on the host listens on 127.0.0.1:port. */
const portFree = (port: number) =>
  new Promise<boolean>((res) => {
    const s = createServer()
      .once('error', () => res(false))
      .listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });

async function skipReason(): Promise<string | undefined> {
  const why = await nspawnUnavailableReason();
  if (why) return why;
  for (const [port, what] of [
    [6379, 'Redis'],
    [5432, 'PostgreSQL'],
  ] as const)
    if (!(await portFree(port)))
      return `port ${port} is taken on the host, and the container shares its network (${what} inside could not listen)`;
  return undefined;
}

const skip = await skipReason();
if (skip) console.log(`# skipped: ${skip}`);
let box: Container | undefined;
const sh = (script: string, timeoutMs = 120_000) => box!.exec(['sh', '-c', script], { timeoutMs });
const plexus = (args: string, timeoutMs = 120_000) => sh(`plexus ${args} --data-dir ${DATA}`, timeoutMs);
const unitState = async (unit: string) =>
  `${(await sh(`systemctl is-active ${unit}`)).stdout.trim()}/${(await sh(`systemctl is-enabled ${unit}`)).stdout.trim()}`;

/** Waits until the agent answers on its socket (after a start or restart of its unit). */
async function agentUp(): Promise<void> {
  const up = await sh(
    `for i in $(seq 120); do plexus apps --data-dir ${DATA} >/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1`,
  );
  assert.equal(up.code, 0, (await sh('journalctl -u plexus -n 30 --no-pager -o cat')).stdout);
}

before(async () => {
  if (skip) return;
  // apt's downloads outlive the box: the second run installs from this cache, not the mirror.
  mkdirSync(APT_ARCHIVES, { recursive: true });
  box = await bootContainer({
    name: `plexus-svc-${process.pid}`,
    writable: [[APT_ARCHIVES, '/var/cache/apt/archives']],
  });
  // The agent's own unit, running from the read-only checkout's sources (no bundle).
  await box.exec(['ln', '-sf', `${REPO}/bin/plexus`, '/usr/bin/plexus']);
  await box.exec(['cp', `${REPO}/packaging/systemd/plexus.service`, '/etc/systemd/system/plexus.service']);
  await sh(
    'mkdir -p /etc/systemd/system/plexus.service.d && ' +
      "printf '[Service]\\nEnvironment=PLEXUS_NO_BUNDLE=1\\n' > /etc/systemd/system/plexus.service.d/test.conf",
  );
  // Port 0: the container shares the host's network, where other tests listen too.
  const init = await sh(`plexus init --name n1 --data-dir ${DATA} --listen /ip4/127.0.0.1/tcp/0`);
  assert.equal(init.code, 0, init.stderr);
  await sh('systemctl daemon-reload && systemctl start plexus');
  await agentUp();
});
after(async () => {
  await box?.stop();
});

describe('services under a real systemd', { skip }, () => {
  it('service install redis: an enabled, active unit that answers PONG, survives an agent restart, and service rm removes', async () => {
    const r = await plexus('service install redis --json', 600_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).state, 'running');
    assert.equal(await unitState('redis-server.service'), 'active/enabled');
    assert.equal((await sh('redis-cli ping')).stdout.trim(), 'PONG');
    // apt ran in a transient unit of its own, not in the agent's read-only one.
    assert.equal((await sh('systemctl show plexus -p ProtectSystem --value')).stdout.trim(), 'strict');
    const ls = async () =>
      (
        JSON.parse((await plexus('service ls --json')).stdout) as {
          name: string;
          version: string;
          state: string;
        }[]
      ).find((s) => s.name === 'redis');
    const before = await ls();
    assert.match(before?.version ?? '', /^\d+\.\d+/);
    assert.equal(before?.state, 'running');
    const pid = (await sh('systemctl show redis-server -p MainPID --value')).stdout.trim();

    await sh('systemctl restart plexus');
    await agentUp();
    assert.equal(
      (await sh('systemctl show redis-server -p MainPID --value')).stdout.trim(),
      pid,
      'the same Redis',
    );
    assert.deepEqual(await ls(), before);

    const rm = await plexus('service rm redis', 300_000);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(await unitState('redis-server.service'), /^(inactive|unknown)\//);
    assert.notEqual((await sh('redis-cli ping')).stdout.trim(), 'PONG');
    assert.notEqual(
      (await sh('dpkg-query -W -f "$' + '{db:Status-Status}" redis-server')).stdout,
      'installed',
    );
    assert.equal(await ls(), undefined);
  });

  it('postgresql --for APP: the unit runs and the app connects with the credentials from its env', async () => {
    // psql comes with the service, so the app's script is checked for only when it runs.
    await sh(
      `cp -r ${REPO}/test/fixtures/workloads/app /root/shop && printf '%s\\n' ` +
        `'psql "$DATABASE_URL" -Atc "select current_user, current_database()"' 'exec sleep 600' > /root/shop/run.sh`,
    );
    const d = await plexus(`deploy shop --dir /root/shop --cmd 'sh run.sh'`);
    assert.equal(d.code, 0, d.stderr);
    const r = await plexus('service install postgresql --for shop', 600_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DATABASE_URL/);
    const unit = (await sh("systemctl list-units --plain --no-legend 'postgresql@*-main.service'")).stdout
      .trim()
      .split(/\s+/)[0];
    assert.match(unit, /^postgresql@\d+-main\.service$/);
    assert.equal(await unitState(unit), 'active/enabled');
    assert.equal((await plexus('restart shop')).code, 0);
    const connected = await sh(
      `for i in $(seq 40); do plexus logs shop -n 20 --data-dir ${DATA} | grep -q 'app_shop|app_shop' && exit 0; sleep 0.5; done; exit 1`,
    );
    assert.equal(connected.code, 0, (await plexus('logs shop -n 20')).stdout);
  });

  it('edge install under systemd: caddy.service with the drop-in serves https://app.test, and its config comes back after a restart', async () => {
    // Below the kernel's ephemeral range: the box shares the host's network with the other e2e
    // lane, whose outgoing connections take ephemeral ports (one took Caddy's http port once).
    const [appPort, https, http] = [await fixedFreePort(), await fixedFreePort(), await fixedFreePort()];
    await sh(`cp -r ${REPO}/test/fixtures/workloads/app /root/web`);
    const d = await plexus(
      `deploy web --dir /root/web --cmd '${NODE} server.cjs' --port ${appPort} --health http://:${appPort}/health`,
    );
    assert.equal(d.code, 0, d.stderr);
    const r = await plexus(
      `edge install --internal-ca --https-port ${https} --http-port ${http} --json`,
      600_000,
    );
    assert.equal(
      r.code,
      0,
      `${r.stderr}${(await sh('journalctl -u caddy -n 20 --no-pager -o cat; systemctl cat caddy')).stdout}`,
    );
    const status = JSON.parse(r.stdout) as {
      rootCert: string;
      daemon: { supervisor: string; state: string };
    };
    assert.equal(status.daemon.supervisor, 'systemd');
    assert.equal(await unitState('caddy.service'), 'active/enabled');
    assert.match(
      (await sh('systemctl cat caddy.service')).stdout,
      /plexus\.conf[\s\S]*ExecStart=\/usr\/bin\/caddy run --environ --config /,
    );
    assert.equal((await plexus('domain add web app.test --no-dns-check')).code, 0);
    // The container shares the host's network: the host's curl reaches Caddy, trusting the root
    // Caddy made inside the container.
    const dir = mkdtempSync(join(tmpdir(), 'plexus-edge-sd-'));
    const ca = join(dir, 'root.crt');
    const curl = () =>
      execFileP('curl', [
        '-sS',
        '--max-time',
        '5',
        '--resolve',
        `app.test:${https}:127.0.0.1`,
        '--cacert',
        ca,
        `https://app.test:${https}/info`,
      ]).then(
        (x) => x.stdout,
        (e) => String(e.stderr),
      );
    const served = async (what: string) => {
      for (let i = 0; i < 60; i++) {
        const root = await sh(`cat ${status.rootCert}`);
        if (root.code === 0) writeFileSync(ca, root.stdout);
        const out = root.code === 0 ? await curl() : root.stderr;
        if (/"pid"/.test(out)) return;
        if (i === 59) assert.fail(`${what}: ${out}`);
        await new Promise((res) => setTimeout(res, 500));
      }
    };
    try {
      await served('https://app.test through caddy.service');
      // systemd restarts Caddy with the bootstrap config; the agent loads its own again.
      await sh('systemctl restart caddy');
      await served('https://app.test after systemctl restart caddy');
      const u = await plexus('edge uninstall --purge', 300_000);
      assert.equal(u.code, 0, u.stderr);
      assert.match(await unitState('caddy.service'), /^(inactive|unknown)\//);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
