/**
 * The Caddy edge end to end (issue 18), one agent for the whole file: `edge install` (Caddy from
 * apt, under the agent's own supervisor here since systemd is not PID 1), a deployed app served at
 * https://app.test by Caddy with a certificate from its internal CA (curl --resolve), refusals
 * with their codes, the admin API out of an app user's reach, the config re-applied after Caddy
 * is killed, and `domain rm` ending the service; then an ACME CA (Debian's pebble, on loopback)
 * that refuses one domain: `domain ls` and `edge status` say so with the CA's answer, and the app
 * is still served at its other domain. Needs root and apt; Caddy stays installed only if it was
 * before.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { socketClient } from '../../src/cli/client.ts';
import { aptUnavailableReason, installedVersion } from '../../src/host/apt.ts';
import { selfSignedCert } from '../helpers/certs.ts';
import { type Cluster, freePort, startCluster, type TestNode, waitFor } from '../helpers/cluster.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const execFileP = promisify(execFile);
const FIXTURE = resolve(import.meta.dirname, '..', 'fixtures', 'workloads', 'app');
const skip = aptUnavailableReason();
const scratch = mkdtempSync(join(tmpdir(), 'plexus-edge-'));
// Caddy's user reads the ACME CA's files the test makes.
chmodSync(scratch, 0o755);

/** Why the local ACME CA (pebble, from apt) cannot run here, or undefined. */
async function pebbleUnavailable(): Promise<string | undefined> {
  const has = () =>
    execFileP('sh', ['-c', 'command -v pebble && command -v openssl']).then(
      () => true,
      () => false,
    );
  if (!(await has()))
    await execFileP('apt-get', ['install', '-y', 'pebble', 'openssl'], { timeout: 300_000 }).catch(() => {});
  return (await has())
    ? undefined
    : 'pebble (a local ACME CA) is not installed and apt-get could not install it';
}

/**
 * Debian's pebble on loopback: an ACME CA that accepts every challenge (no validation requests
 * leave) but refuses to issue for `blocked`. Its own https endpoint has a self-signed cert.
 */
async function startPebble(blocked: string) {
  const [port, mgmt] = [await freePort(), await freePort()];
  const { key, cert } = selfSignedCert(scratch, 'pebble', { cn: 'pebble', san: 'IP:127.0.0.1' });
  const config = join(scratch, 'pebble.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${mgmt}`,
        certificate: cert,
        privateKey: key,
        httpPort: 5002,
        tlsPort: 5001,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        domainBlocklist: [blocked],
      },
    }),
  );
  for (const f of [key, cert, config]) chmodSync(f, 0o644);
  const env = {
    ...process.env,
    PEBBLE_VA_ALWAYS_VALID: '1',
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: '0',
  };
  const proc: ChildProcess = spawn('pebble', ['-config', config], { env, stdio: 'ignore' });
  const dir = `https://127.0.0.1:${port}/dir`;
  await waitFor(
    () =>
      execFileP('curl', ['-sf', '--cacert', cert, dir]).then(
        () => true,
        () => false,
      ),
    20_000,
    'pebble answers',
  );
  // The root pebble signs certificates with (made at its start).
  const issuing = (await execFileP('curl', ['-sf', '--cacert', cert, `https://127.0.0.1:${mgmt}/roots/0`]))
    .stdout;
  const root = join(scratch, 'pebble-root.pem');
  writeFileSync(root, issuing);
  // What an operator gives --acme-ca-root for a private CA: the roots of its endpoint and its certificates.
  const roots = join(scratch, 'pebble-roots.pem');
  writeFileSync(roots, `${readFileSync(cert, 'utf8')}${issuing}`);
  return { proc, dir, cert, root, roots };
}

/** The final frame of an action over the control socket: its result, or its error body. */
async function call(node: TestNode, action: string, args: Record<string, unknown>) {
  try {
    return { result: await socketClient(join(node.dataDir, 'plexus.sock')).call(action, args) };
  } catch (err) {
    return {
      error: (err as { body?: { code: string; kind: string } }).body ?? { code: String(err), kind: '' },
    };
  }
}

/** curl for https://HOST:PORT/PATH through 127.0.0.1, trusting Caddy's internal root. */
async function curl(host: string, port: number, path: string, ca: string) {
  return execFileP('curl', [
    '-sS',
    '--max-time',
    '5',
    '--resolve',
    `${host}:${port}:127.0.0.1`,
    '--cacert',
    ca,
    `https://${host}:${port}${path}`,
  ]).then(
    (r) => ({ ok: true, out: r.stdout }),
    (e) => ({ ok: false, out: String(e.stderr ?? e.message) }),
  );
}

describe('edge end to end', { skip }, () => {
  let cluster: Cluster;
  let n1: TestNode;
  let appPort: number;
  let https: number;
  let http: number;
  let hadCaddy = false;
  let status: { adminSocket: string; rootCert: string; daemon: { pid: number } };
  /** What https://HOST/info answers through Caddy, once it does (trusting `ca`). */
  const servedAt = (host: string, ca: string, ms: number, what: string) =>
    waitFor(
      async () => {
        const c = await curl(host, https, '/info', ca);
        return c.ok ? c.out : '';
      },
      ms,
      what,
    );

  before(async () => {
    hadCaddy = (await installedVersion('caddy')) !== undefined;
    appPort = await freePort();
    https = await freePort();
    cluster = await startCluster(1);
    n1 = cluster.nodes[0];
    const dir = join(scratch, 'app');
    cpSync(FIXTURE, dir, { recursive: true });
    const r = await n1.run([
      'deploy',
      'web',
      '--dir',
      dir,
      '--cmd',
      `${process.execPath} server.cjs`,
      '--port',
      String(appPort),
      '--health',
      `http://:${appPort}/health`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const plain = await n1.run(['deploy', 'worker', '--dir', dir, '--cmd', 'sleep 600']);
    assert.equal(plain.code, 0, plain.stderr);
  });

  after(async () => {
    if (n1) {
      // Stops Caddy and removes only what the install added (nothing when Caddy was there before).
      const u = await n1.run(['edge', 'uninstall', '--purge'], { timeoutMs: 300_000 }).catch(() => undefined);
      if (u?.code !== 0) process.stderr.write(`edge uninstall: ${u?.stderr}\n`);
      if (!hadCaddy) assert.equal(await installedVersion('caddy'), undefined, 'caddy removed again');
      await n1.run(['rm', 'web']).catch(() => {});
      await n1.run(['rm', 'worker']).catch(() => {});
      killProcessesUnder(n1.dataDir);
    }
    await cluster?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('an edge install that fails (its https port taken) says why in one line and leaves the node as it was', async () => {
    const taken = createServer().listen(0, '0.0.0.0');
    await once(taken, 'listening');
    const port = (taken.address() as AddressInfo).port;
    const r = await n1.run(
      [
        'edge',
        'install',
        '--internal-ca',
        '--https-port',
        String(port),
        '--http-port',
        String(await freePort()),
      ],
      { timeoutMs: 600_000 },
    );
    taken.close();
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /address already in use/);
    const s = (await call(n1, 'edge.status', {})).result as { installed: boolean };
    assert.equal(s.installed, false);
    if (!hadCaddy) assert.equal(await installedVersion('caddy'), undefined, 'the caddy package went again');
  });

  it('edge install runs Caddy with the admin API on a root-only unix socket', async () => {
    http = await freePort();
    const r = await n1.run(
      [
        'edge',
        'install',
        '--internal-ca',
        '--https-port',
        String(https),
        '--http-port',
        String(http),
        '--json',
      ],
      { timeoutMs: 600_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    status = JSON.parse(r.stdout);
    assert.equal(status.daemon.pid > 0, true);
    const dir = statSync(join(status.adminSocket, '..'));
    assert.equal(dir.uid, 0);
    assert.equal(dir.mode & 0o007, 0, 'others may not enter the admin folder');
  });

  it('an app user cannot reach Caddy admin API (no TCP endpoint, no way into the socket)', async () => {
    for (const user of ['plexus-app-web', 'nobody']) {
      for (const args of [
        ['-H', 'Host;', '--unix-socket', status.adminSocket, 'http://x/config/'],
        ['http://127.0.0.1:2019/config/'],
        ['http://localhost:2019/load', '-X', 'POST', '-H', 'content-type: application/json', '-d', '{}'],
      ]) {
        const r = await execFileP('setpriv', [
          '--reuid',
          user,
          '--regid',
          user === 'nobody' ? 'nogroup' : user,
          '--clear-groups',
          'curl',
          '-sS',
          '--max-time',
          '3',
          ...args,
        ]).then(
          () => 'reached',
          (e) => String(e.stderr),
        );
        assert.notEqual(r, 'reached', `${user} reached the admin API with ${args.join(' ')}`);
      }
    }
    // The agent (root) does reach it: the refusal above is the permissions, not a dead socket.
    const root = await execFileP('curl', [
      '-sS',
      '--max-time',
      '3',
      '-H',
      'Host;',
      '--unix-socket',
      status.adminSocket,
      'http://x/config/',
    ]);
    assert.match(root.stdout, /plexus-/);
  });

  it('domain add refuses a bad host, an unknown app, an app without a port and a host not pointing here', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ app: 'web', host: '-bad.test' }, 'INVALID_HOST'],
      [{ app: 'web', host: 'a..test' }, 'INVALID_HOST'],
      [{ app: 'web', host: `${'a'.repeat(64)}.test` }, 'INVALID_HOST'],
      [{ app: 'web', host: '127.0.0.1' }, 'INVALID_HOST'],
      [{ app: 'web', host: '*.app.test' }, 'INVALID_HOST'],
      [{ app: 'web', host: 'x'.repeat(300) }, 'INVALID_ARGUMENT'],
      [{ app: 'nope', host: 'app.test', dnsCheck: false }, 'UNKNOWN_APP'],
      [{ app: 'worker', host: 'worker.test', dnsCheck: false }, 'APP_HAS_NO_PORT'],
      [{ app: 'web', host: 'app.test' }, 'DNS_MISMATCH'],
    ];
    for (const [args, code] of cases) {
      const r = await call(n1, 'domains.add', args);
      assert.equal(r.error?.code, code, JSON.stringify(args));
    }
    const ls = await call(n1, 'domains.list', {});
    assert.deepEqual(ls.result, []);
  });

  it('serves https://app.test through Caddy with an internal-CA certificate', async () => {
    const r = await n1.run(['domain', 'add', 'web', 'app.test', '--no-dns-check']);
    assert.equal(r.code, 0, r.stderr);
    const got = await servedAt('app.test', status.rootCert, 20_000, 'https://app.test');
    assert.match(got, /"pid"/);
    const ls = await n1.json<{ host: string; app: string; cert: string; certIssuer: string }[]>([
      'domain',
      'ls',
      '--json',
    ]);
    assert.equal(ls[0].host, 'app.test');
    assert.equal(ls[0].cert, 'ok');
    assert.match(ls[0].certIssuer, /Caddy Local Authority/);
    const taken = await call(n1, 'domains.add', { app: 'worker', host: 'APP.test', dnsCheck: false });
    assert.equal(taken.error?.code, 'DOMAIN_TAKEN');
    // Plain http redirects to https on the standard port (Caddy takes its https port as what 443 forwards to).
    const redirect = await execFileP('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{redirect_url}',
      '--resolve',
      `app.test:${http}:127.0.0.1`,
      `http://app.test:${http}/info`,
    ]);
    assert.equal(redirect.stdout, '308 https://app.test/info');
  });

  it('re-applies its config when Caddy is killed', async () => {
    process.kill(status.daemon.pid, 'SIGKILL');
    await waitFor(
      async () => {
        const s = (await call(n1, 'edge.status', {})).result as { daemon: { pid: number }; applied: boolean };
        return s.daemon.pid && s.daemon.pid !== status.daemon.pid && s.applied;
      },
      20_000,
      'Caddy restarted with the edge config',
    );
    const c = await servedAt('app.test', status.rootCert, 10_000, 'https://app.test again');
    assert.match(c, /"pid"/);
  });

  it('an agent restart adopts Caddy, which still serves, and restarts it with the config if it dies', async () => {
    const before = ((await call(n1, 'edge.status', {})).result as { daemon: { pid: number } }).daemon.pid;
    await n1.stop();
    await n1.start();
    const after = (await call(n1, 'edge.status', {})).result as { daemon: { pid: number } };
    assert.equal(after.daemon.pid, before, 'the same Caddy, adopted');
    assert.equal((await curl('app.test', https, '/info', status.rootCert)).ok, true);
    process.kill(before, 'SIGKILL');
    await waitFor(
      async () => {
        const s = (await call(n1, 'edge.status', {})).result as { daemon: { pid: number }; applied: boolean };
        return s.daemon.pid && s.daemon.pid !== before && s.applied;
      },
      20_000,
      'Caddy restarted after the agent restart',
    );
    await waitFor(
      async () => (await curl('app.test', https, '/info', status.rootCert)).ok,
      10_000,
      'served again',
    );
  });

  it('domain rm stops serving the host', async () => {
    const r = await n1.run(['domain', 'rm', 'app.test']);
    assert.equal(r.code, 0, r.stderr);
    const c = await curl('app.test', https, '/info', status.rootCert);
    assert.equal(c.ok, false, c.out);
    const again = await call(n1, 'domains.remove', { host: 'app.test' });
    assert.equal(again.error?.code, 'UNKNOWN_DOMAIN');
  });

  it('an ACME CA that refuses a domain: domain ls and edge status say why, the app stays served at its other domain', async (t) => {
    const why = await pebbleUnavailable();
    if (why) return t.skip(why);
    const pebble = await startPebble('blocked.test');
    try {
      const bad = await n1.run([
        'edge',
        'install',
        '--acme-ca',
        pebble.dir,
        '--acme-ca-root',
        join(scratch, 'none.pem'),
      ]);
      assert.equal(bad.code, 2, 'a usage error: the CLI reads the file');
      assert.match(bad.stderr, /^plexus: cannot read --acme-ca-root \S+none\.pem: ENOENT\n$/);
      const ports = ['--https-port', String(https), '--http-port', String(http)];
      const r = await n1.run(
        ['edge', 'install', ...ports, '--acme-ca', pebble.dir, '--acme-ca-root', pebble.roots],
        {
          timeoutMs: 120_000,
        },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`certificates: ACME \\(${pebble.dir.replace(/[.]/g, '\\.')}\\)`));
      for (const host of ['ok.test', 'blocked.test'])
        assert.equal((await n1.run(['domain', 'add', 'web', host, '--no-dns-check'])).code, 0);
      const served = await servedAt(
        'ok.test',
        pebble.root,
        30_000,
        'https://ok.test with the ACME CA certificate',
      );
      assert.match(served, /"pid"/);
      type Row = { host: string; cert: string; certError: string | null; certIssuer: string | null };
      const blocked = await waitFor(
        async () => {
          const rows = await n1.json<Row[]>(['domain', 'ls', '--json']);
          const b = rows.find((x) => x.host === 'blocked.test');
          return b?.cert === 'error' ? { b, ok: rows.find((x) => x.host === 'ok.test') } : undefined;
        },
        20_000,
        'blocked.test reported as failing',
      );
      assert.match(
        blocked!.b.certError ?? '',
        /^issuance failed: HTTP 400 urn:ietf:params:acme:error:rejectedIdentifier - /,
      );
      assert.equal(blocked!.ok?.cert, 'ok');
      assert.match(blocked!.ok?.certIssuer ?? '', /Pebble/);
      assert.match(
        (await n1.run(['domain', 'ls'])).stdout,
        /^blocked\.test\s+web\s+error\s.*rejectedIdentifier/m,
      );
      assert.match((await n1.run(['edge', 'status'])).stdout, /2 domain\(s\), 1 with a certificate problem/);
      assert.equal((await curl('blocked.test', https, '/info', pebble.root)).ok, false);
    } finally {
      pebble.proc.kill();
    }
  });
});
