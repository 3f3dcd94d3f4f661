// test-lane: side (boots systemd in a container and mostly waits on apt inside it; see scripts/test)
/**
 * Services under a real systemd (issue 18). The host's PID 1 is not systemd, so the cached Debian
 * rootfs is booted with systemd-nspawn (test/helpers/nspawn.ts) and the agent runs there under its
 * own unit (packaging/systemd/plexus.service, ProtectSystem=strict): `service install` must run apt
 * in a transient unit, enable and start the package's own unit, and keep it through an agent
 * restart; `service rm` stops and disables it and removes the packages; PostgreSQL `--for APP`
 * puts credentials the app connects with into its env. One container for the file. The container
 * shares the host's network (apt reaches the machine's configured mirror), so Redis's and
 * PostgreSQL's ports must be free on the host.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootContainer, type Container, inBox, nspawnUnavailableReason } from '../helpers/nspawn.ts';

const REPO = inBox(resolve(import.meta.dirname, '..', '..'));
const DATA = '/var/lib/plexus';

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
  box = await bootContainer({ name: `plexus-svc-${process.pid}` });
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
    assert.notEqual((await sh('dpkg-query -W -f "$' + '{db:Status-Status}" redis-server')).stdout, 'installed');
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
});
