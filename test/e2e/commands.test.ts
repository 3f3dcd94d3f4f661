/**
 * Signed commands end to end (issue 5): operator keys granted on one node and honoured on
 * another, the remote CLI from a machine with no agent, exec, roles and tenants, and every kind
 * of bad input refused with an error frame and an audit entry while nothing runs.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Cluster, freePort, PLEXUS, plexus, startCluster, waitFor } from '../helpers/cluster.ts';
import { last, post, type RawReply, sign } from '../helpers/commands.ts';

interface AuditRow {
  id: string | null;
  kid: string | null;
  action: string | null;
  verdict: string;
  code: string | null;
  via: string;
  outcome: string | null;
  count: number;
}

describe('signed commands', () => {
  let cluster: Cluster;
  let keys: string;
  let api1: string;
  const peer: Record<string, string> = {};
  const kid: Record<string, string> = {};
  const key = (name: string) => join(keys, `${name}.key`);
  /** A data dir with no agent: what an operator's laptop has. */
  let laptop: string;
  const remote = (k: string, args: string[], timeoutMs?: number) =>
    plexus(['--api', api1, '--key', key(k), '--data-dir', laptop, ...args], { timeoutMs });
  /** `plexus exec` on n1's agent (the options must come before `--`). */
  const execVia1 = (args: string[]) => plexus(['--data-dir', cluster.nodes[0].dataDir, 'exec', ...args]);

  before(async () => {
    cluster = await startCluster(2);
    keys = join(cluster.root, 'op-keys');
    laptop = join(cluster.root, 'laptop');
    mkdirSync(keys);
    mkdirSync(laptop);
    api1 = `http://127.0.0.1:${cluster.nodes[0].apiPort}`;
    for (const n of cluster.nodes) peer[n.name] = (await n.json<{ peerId: string }>(['status'])).peerId;
    // keygen needs no agent: run it against the empty laptop data dir. `--admin` records the
    // network's admin key (from a member's data dir), which the CLI checks every agent against.
    for (const k of ['viewer', 'blue', 'red', 'execer', 'revoked', 'stranger']) {
      const r = await plexus([
        'operator',
        'keygen',
        '--out',
        key(k),
        '--admin',
        cluster.nodes[1].dataDir,
        '--json',
        '--data-dir',
        laptop,
      ]);
      assert.equal(r.code, 0, r.stderr);
      kid[k] = JSON.parse(r.stdout).kid;
    }
    const n1 = cluster.nodes[0];
    const grant = async (k: string, extra: string[]) => {
      const r = await n1.run(['operator', 'add', '--pub', `${key(k)}.pub`, ...extra]);
      assert.equal(r.code, 0, r.stderr);
    };
    await grant('viewer', ['--role', 'viewer']);
    await grant('blue', ['--role', 'operator', '--tenant', 'blue']);
    await grant('red', ['--role', 'operator', '--tenant', 'red']);
    await grant('execer', ['--role', 'operator', '--exec', '--expires', '1d']);
    await grant('revoked', ['--role', 'admin']);
    // `--`: a key id is base64url and may start with '-' (1 in 64), which would read as an option
    // (the CLI says so); --data-dir goes before the verb, since everything after `--` is an id.
    const revoke = await plexus(['--data-dir', n1.dataDir, 'operator', 'revoke', '--', kid.revoked]);
    assert.equal(revoke.code, 0, revoke.stderr);
    // Gossip carries every grant and the revocation to n2.
    await waitFor(
      async () => {
        const ls = await cluster.nodes[1].json<{ kid: string; state: string }[]>(['operator', 'ls']);
        return (
          ['viewer', 'blue', 'execer'].every((k) =>
            ls.some((x) => x.kid === kid[k] && x.state === 'active'),
          ) && ls.some((x) => x.kid === kid.revoked && x.state === 'revoked')
        );
      },
      20_000,
      'grants and the revocation to reach n2',
    );
  });
  after(async () => cluster?.stop());

  const audit = (node: number) => cluster.nodes[node].json<AuditRow[]>(['audit', '-n', '500']);

  it('operator ls shows the admin key and the grants with their limits', async () => {
    const ls = await cluster.nodes[1].json<
      {
        kid: string;
        role: string;
        tenant: string | null;
        exec: boolean;
        source: string;
        expiresAt: number | null;
      }[]
    >(['operator', 'ls']);
    assert.equal(ls[0].source, 'admin-key');
    const blue = ls.find((x) => x.kid === kid.blue)!;
    assert.deepEqual([blue.role, blue.tenant, blue.exec], ['operator', 'blue', false]);
    const execer = ls.find((x) => x.kid === kid.execer)!;
    assert.equal(execer.exec, true);
    assert.ok(execer.expiresAt && execer.expiresAt > Date.now() + 23 * 3600_000);
  });

  it('the remote CLI works from a data dir with no agent, through n1, on n2', async () => {
    const s = await remote('viewer', ['status', '--json']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).name, 'n1');
    const s2 = await remote('viewer', ['status', '--node', 'n2', '--json']);
    assert.equal(s2.code, 0, s2.stderr);
    assert.equal(JSON.parse(s2.stdout).name, 'n2');
    const apps = await remote('viewer', ['apps', '--node', 'n2', '--json']);
    assert.equal(apps.code, 0, apps.stderr);
    assert.deepEqual(JSON.parse(apps.stdout), []);
  });

  it('exec streams stdout and stderr and propagates the exit code', async () => {
    const r = await remote('execer', ['exec', 'n2', '--', 'sh', '-c', 'printf out; printf err >&2; exit 7']);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'out');
    assert.match(r.stderr, /err/);
    const local = await execVia1(['n2', '--', 'true']);
    assert.equal(local.code, 0, local.stderr);
    assert.equal((await execVia1(['n2', '--', 'no-such-command-plexus'])).code, 127);
  });

  it('interrupting exec kills the remote command', async () => {
    const sleeping = () =>
      execFileSync('ps', ['-eo', 'comm=,args='], { encoding: 'utf8' })
        .split('\n')
        .some((l) => l.startsWith('sleep') && l.includes('987.25'));
    const cli = spawn(PLEXUS, [
      '--api',
      api1,
      '--key',
      key('execer'),
      '--data-dir',
      laptop,
      'exec',
      'n2',
      '--',
      'sleep',
      '987.25',
    ]);
    try {
      await waitFor(sleeping, 20_000, 'the remote sleep to start');
    } finally {
      cli.kill('SIGINT');
    }
    await waitFor(() => !sleeping(), 10_000, 'the remote sleep to be killed');
  });

  it('exec has a timeout and an output limit', async () => {
    const t0 = Date.now();
    const slow = await execVia1(['n2', '--timeout', '1', '--', 'sleep', '30']);
    assert.equal(slow.code, 124);
    assert.ok(Date.now() - t0 < 10_000);
    const loud = await execVia1(['n2', '--max-output', '1000', '--', 'sh', '-c', 'yes | head -c 1000000']);
    assert.notEqual(loud.code, 0);
    assert.ok(loud.stdout.length <= 1000, `got ${loud.stdout.length} bytes`);
  });

  it('roles and tenants: a viewer reads but cannot exec; a tenant operator only touches its tenant', async () => {
    const marker = join(cluster.root, 'viewer-ran');
    const v = await remote('viewer', ['exec', 'n2', '--', 'touch', marker]);
    assert.equal(v.code, 1);
    assert.ok(!existsSync(marker));
    // Each tenant operator deploys an app: it belongs to the deployer's tenant.
    const src = join(cluster.root, 'tenant-src');
    mkdirSync(src);
    writeFileSync(join(src, 'run.sh'), 'sleep 600\n');
    // The command comes with the bundle: choosing it with --cmd would take the exec grant.
    writeFileSync(join(src, 'plexus.yaml'), 'cmd: sh run.sh\nrestart: never\n');
    for (const t of ['red', 'blue']) {
      const d = await remote(t, ['deploy', `${t}app`, '--dir', src, '--node', 'n2'], 120_000);
      assert.equal(d.code, 0, d.stderr);
    }
    const stop = await remote('blue', ['stop', 'redapp', '--node', 'n2']);
    assert.equal(stop.code, 1);
    const logs = await remote('blue', ['logs', 'redapp', '--node', 'n2']);
    assert.equal(logs.code, 1);
    const mine = await remote('blue', ['apps', '--node', 'n2', '--json']);
    assert.equal(mine.code, 0, mine.stderr);
    assert.deepEqual(
      (JSON.parse(mine.stdout) as { name: string }[]).map((a) => a.name),
      ['blueapp'],
    );
    const all = await cluster.nodes[1].json<{ name: string; status: string }[]>(['apps']);
    assert.deepEqual(all.map((a) => [a.name, a.status]).sort(), [
      ['blueapp', 'running'],
      ['redapp', 'running'],
    ]);
    const rows = await audit(1);
    assert.ok(
      rows.some((r) => r.kid === kid.viewer && r.code === 'FORBIDDEN_ROLE' && r.verdict === 'refused'),
    );
    // Another tenant's app answers a tenant key as a missing one would (issue 13), audited; both
    // refusals came from one relay with one code and one key: one row counting them.
    assert.equal(
      rows
        .filter((r) => r.kid === kid.blue && r.code === 'UNKNOWN_APP' && r.verdict === 'refused')
        .reduce((n, r) => n + r.count, 0),
      2,
    );
  });

  it('app verbs through signed commands: deploy --dir upload, logs -f, env, stop, rm on n2', async () => {
    const dir = join(cluster.root, 'app-src');
    mkdirSync(dir);
    writeFileSync(join(dir, 'run.sh'), 'while true; do echo "tick $GREETING"; sleep 0.2; done\n');
    const admin = join(cluster.nodes[0].dataDir, 'keys', 'admin.key');
    const as = (args: string[], timeoutMs = 120_000) =>
      plexus(['--api', api1, '--key', admin, '--data-dir', laptop, ...args, '--node', 'n2'], { timeoutMs });
    const d = await as(['deploy', 'ticker', '--dir', dir, '--cmd', 'sh run.sh', '--restart', 'never']);
    assert.equal(d.code, 0, d.stderr);
    // The value is stored encrypted on n2 and applies from the next restart.
    const env = await as(['env', 'set', 'ticker', 'GREETING=remote']);
    assert.equal(env.code, 0, env.stderr);
    const restart = await as(['restart', 'ticker']);
    assert.equal(restart.code, 0, restart.stderr);
    const apps = JSON.parse((await as(['apps', '--json'])).stdout) as { name: string; status: string }[];
    assert.equal(apps.find((a) => a.name === 'ticker')?.status, 'running');
    // The app really runs on n2, not on n1.
    const names = async (i: number) =>
      (await cluster.nodes[i].json<{ name: string }[]>(['apps'])).map((x) => x.name);
    assert.ok((await names(1)).includes('ticker'));
    assert.ok(!(await names(0)).includes('ticker'));
    const follow = spawn(PLEXUS, [
      '--api',
      api1,
      '--key',
      admin,
      '--data-dir',
      laptop,
      'logs',
      'ticker',
      '-f',
      '--node',
      'n2',
    ]);
    let seen = '';
    follow.stdout.on('data', (c) => {
      seen += c;
    });
    try {
      await waitFor(() => (seen.match(/tick remote/g) ?? []).length >= 3, 20_000, 'streamed log lines');
    } finally {
      follow.kill();
    }
    // A second release, then back to the first.
    assert.equal(
      (await as(['deploy', 'ticker', '--dir', dir, '--cmd', 'sh run.sh', '--restart', 'never'])).code,
      0,
    );
    const rb = await as(['rollback', 'ticker']);
    assert.equal(rb.code, 0, rb.stderr);
    const rels = JSON.parse((await as(['releases', 'ticker', '--json'])).stdout) as { status: string }[];
    assert.equal(rels.length, 2);
    assert.equal((await as(['stop', 'ticker'])).code, 0);
    assert.equal((await as(['start', 'ticker'])).code, 0);
    assert.equal((await as(['stop', 'ticker'])).code, 0);
    assert.equal((await as(['rm', 'ticker'])).code, 0);
    assert.ok(!(await names(1)).includes('ticker'));
  });

  describe('bad input: refused with an error frame and an audit entry; nothing runs', () => {
    const url = () => `${api1}/v1/commands`;
    const touch = (name: string) => ({ cmd: 'touch', args: [join(cluster.root, `ran-${name}`)] });
    const ran = (name: string) => existsSync(join(cluster.root, `ran-${name}`));

    async function refused(
      name: string,
      envelope: unknown,
      expect: { status: number; code: string; auditOn: number },
    ): Promise<void> {
      const r = await post(url(), `${JSON.stringify(envelope)}\n`);
      assert.equal(r.status, expect.status, `${name}: ${r.body}`);
      assert.equal(last(r)?.type, 'error', `${name}: ${r.body}`);
      assert.equal(last(r)?.error?.code, expect.code, `${name}: ${r.body}`);
      assert.ok(!ran(name), `${name}: the command ran`);
      const rows = await audit(expect.auditOn);
      assert.ok(
        rows.some((row) => row.code === expect.code && row.verdict === 'refused'),
        `${name}: no audit entry with ${expect.code} on n${expect.auditOn + 1}`,
      );
    }

    it('expired, future-dated and too-long-lived envelopes', async () => {
      const cmd = (n: string) => ({ target: peer.n2, action: 'node.exec', args: touch(n) });
      await refused('expired', sign(key('execer'), cmd('expired'), Date.now() - 200_000).envelope, {
        status: 401,
        code: 'EXPIRED',
        auditOn: 0,
      });
      await refused('future', sign(key('execer'), cmd('future'), Date.now() + 120_000).envelope, {
        status: 401,
        code: 'FUTURE_DATED',
        auditOn: 0,
      });
      await refused('longlived', sign(key('execer'), { ...cmd('longlived'), ttlS: 400 }).envelope, {
        status: 400,
        code: 'TTL_TOO_LONG',
        auditOn: 0,
      });
    });

    it('tampered, unknown-key and revoked-key envelopes', async () => {
      const { envelope, payload } = sign(key('execer'), {
        target: peer.n2,
        action: 'node.exec',
        args: touch('tampered-orig'),
      });
      const altered = { ...payload, args: touch('tampered') };
      const forged = { ...envelope, payload: Buffer.from(JSON.stringify(altered)).toString('base64url') };
      await refused('tampered', forged, { status: 401, code: 'BAD_SIGNATURE', auditOn: 0 });
      assert.ok(!ran('tampered-orig'));
      await refused(
        'stranger',
        sign(key('stranger'), { target: peer.n2, action: 'node.exec', args: touch('stranger') }).envelope,
        { status: 401, code: 'UNKNOWN_KEY', auditOn: 0 },
      );
      await refused(
        'revoked',
        sign(key('revoked'), { target: peer.n2, action: 'node.exec', args: touch('revoked') }).envelope,
        { status: 401, code: 'KEY_REVOKED', auditOn: 0 },
      );
    });

    it('wrong-role and wrong-tenant envelopes are refused by the target, with a signed error frame', async () => {
      const env = sign(key('viewer'), { target: peer.n2, action: 'node.exec', args: touch('role') }).envelope;
      await refused('role', env, { status: 403, code: 'FORBIDDEN_ROLE', auditOn: 1 });
      const r = await post(
        url(),
        `${JSON.stringify(sign(key('blue'), { target: peer.n2, action: 'apps.stop', args: { app: 'redapp' } }).envelope)}\n`,
      );
      // Not your app = no such app (issue 13): the same 404 as for an app that does not exist.
      assert.equal(r.status, 404);
      assert.equal(last(r)?.error?.code, 'UNKNOWN_APP');
      assert.equal(typeof (last(r) as { fsig?: string }).fsig, 'string');
    });

    it('a target that is not a member is refused at the door', async () => {
      const { signer } = await import('../../src/crypto/ed25519.ts').then((m) => ({
        signer: m.generateSigner(),
      }));
      const { peerIdOf } = await import('../../src/mesh/peer-ids.ts');
      const stranger = peerIdOf(signer.signer.publicKey);
      const env = sign(key('execer'), {
        target: stranger,
        action: 'node.exec',
        args: touch('nomember'),
      }).envelope;
      await refused('nomember', env, { status: 404, code: 'UNKNOWN_TARGET', auditOn: 0 });
    });

    it('a replay is refused, also after the target restarts', async () => {
      const { envelope } = sign(key('execer'), {
        target: peer.n2,
        action: 'node.exec',
        args: touch('replay'),
      });
      const first = await post(url(), `${JSON.stringify(envelope)}\n`);
      assert.equal(first.status, 200, first.body);
      assert.equal(last(first)?.type, 'result');
      assert.ok(ran('replay'));
      const again = await post(url(), `${JSON.stringify(envelope)}\n`);
      assert.equal(again.status, 403);
      assert.equal(last(again)?.error?.code, 'REPLAY');
      const n2 = cluster.nodes[1];
      await n2.stop();
      await n2.start();
      await cluster.waitConverged();
      // n1 may still be redialling the restarted n2: retry until the target itself answers.
      const afterRestart = (await waitFor(async () => {
        const r = await post(url(), `${JSON.stringify(envelope)}\n`);
        return r.frames.length && last(r)?.error?.code !== 'PEER_UNREACHABLE' ? r : false;
      })) as RawReply;
      assert.equal(last(afterRestart)?.error?.code, 'REPLAY', afterRestart.body);
      const rows = (await audit(1)).filter(
        (r) => r.id === JSON.parse(Buffer.from(envelope.payload, 'base64url').toString()).id,
      );
      assert.deepEqual(
        rows.map((r) => r.verdict),
        ['accepted', 'refused', 'refused'],
      );
    });

    it('malformed JSON, a non-envelope and oversized bodies get 4xx and an audit entry', async () => {
      const bad = await post(url(), '{"v":1,\n');
      assert.equal(bad.status, 400);
      assert.equal(JSON.parse(bad.body).error.code, 'BAD_JSON');
      const shape = await post(url(), '{"hello":1}\n');
      assert.equal(shape.status, 400);
      assert.equal(last(shape)?.error?.code, 'BAD_ENVELOPE');
      const big = await post(url(), `${JSON.stringify({ v: 1, kid: 'x'.repeat(300_000) })}\n`);
      assert.equal(big.status, 413);
      const huge = await post(url(), `${'x'.repeat(2_000_000)}\n`);
      assert.equal(huge.status, 413);
      const rows = await audit(0);
      for (const code of ['BAD_JSON', 'BAD_ENVELOPE', 'BODY_TOO_LARGE', 'LINE_TOO_LONG'])
        assert.ok(
          rows.some((r) => r.code === code && r.verdict === 'refused'),
          `no audit entry for ${code}`,
        );
    });

    it('a body that never finishes is cut off', async () => {
      const t0 = Date.now();
      const r = await post(url(), (req) => {
        req.write('{"v":1,"kid":"');
      });
      assert.equal(r.status, 400);
      assert.equal(JSON.parse(r.body).error.code, 'BODY_TIMEOUT');
      assert.ok(Date.now() - t0 < 15_000);
      assert.ok((await audit(0)).some((row) => row.code === 'BODY_TIMEOUT'));
    });

    it('a relaying node that alters reply frames is detected; one that passes them on is not', async () => {
      const port = await freePort();
      let alter = true;
      const proxy: Server = createServer((req, res) => {
        const up = request(`${api1}${req.url}`, { method: req.method, headers: req.headers }, (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.setEncoding('utf8');
          upRes.on('data', (chunk: string) =>
            res.write(
              alter ? chunk.replaceAll('hello', 'HELLO').replaceAll('"exitCode":0', '"exitCode":0 ') : chunk,
            ),
          );
          upRes.on('end', () => res.end());
        });
        req.pipe(up);
      });
      await new Promise<void>((r) => proxy.listen(port, '127.0.0.1', r));
      try {
        const via = `http://127.0.0.1:${port}`;
        const run = () =>
          plexus([
            '--api',
            via,
            '--key',
            key('execer'),
            '--data-dir',
            laptop,
            'exec',
            'n2',
            '--',
            'echo',
            'hello',
          ]);
        const tampered = await run();
        assert.equal(tampered.code, 1);
        assert.doesNotMatch(tampered.stdout, /HELLO/);
        assert.match(
          tampered.stderr,
          /is not signed by n2 \(…[^)]+\): the agent at http:\/\/127\.0\.0\.1:\d+ \(presenting itself as n1/,
        );
        alter = false;
        const clean = await run();
        assert.equal(clean.code, 0, clean.stderr);
        assert.equal(clean.stdout, 'hello\n');
      } finally {
        proxy.close();
      }
    });

    it('a relaying node that swaps uploaded bytes cannot get them deployed', async () => {
      const port = await freePort();
      const proxy: Server = createServer(async (req, res) => {
        let body = '';
        for await (const c of req) body += c;
        const lines = body.split('\n');
        // The first input frame is an upload chunk: flip its first base64 character.
        if (lines.length > 2 && lines[1].includes('"chunk"')) {
          const f = JSON.parse(lines[1]) as { chunk: string };
          f.chunk = (f.chunk[0] === 'A' ? 'B' : 'A') + f.chunk.slice(1);
          lines[1] = JSON.stringify(f);
        }
        const headers = { ...req.headers };
        delete headers['content-length'];
        const up = request(`${api1}${req.url}`, { method: req.method, headers }, (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        });
        up.end(lines.join('\n'));
      });
      await new Promise<void>((r) => proxy.listen(port, '127.0.0.1', r));
      try {
        const dir = join(cluster.root, 'swap-src');
        mkdirSync(dir);
        writeFileSync(join(dir, 'run.sh'), 'sleep 600\n');
        const admin = join(cluster.nodes[0].dataDir, 'keys', 'admin.key');
        const r = await plexus(
          [
            '--api',
            `http://127.0.0.1:${port}`,
            '--key',
            admin,
            '--data-dir',
            laptop,
            'deploy',
            'swapped',
          ].concat(['--dir', dir, '--cmd', 'sh run.sh', '--node', 'n2']),
          { timeoutMs: 120_000 },
        );
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, /digest/);
        assert.ok(
          !(await cluster.nodes[1].json<{ name: string }[]>(['apps'])).some((a) => a.name === 'swapped'),
        );
        const rows = await audit(1);
        assert.ok(rows.some((row) => row.action === 'apps.deploy' && row.outcome === 'INPUT_TAMPERED'));
      } finally {
        proxy.close();
      }
    });
  });
});
