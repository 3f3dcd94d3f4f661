/**
 * Two nodes behind two different NATs (issue 14): each in a network namespace behind a gateway
 * that masquerades outbound connections and drops inbound ones, a dialable relay between them,
 * and both joined with a plain `plexus join` (no `--behind-nat`). Each finds out by itself that
 * it cannot be dialled (dial-backs by members), reserves on the relay, and a forward from one
 * to the other works within seconds. Needs root, iproute2 and iptables; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, waitFor } from '../helpers/cluster.ts';
import { type NsNode, natUnavailable, nsNode } from '../helpers/netns.ts';
import { createTwoNatTopology, type TwoNatTopology } from '../helpers/netns-two-nat.ts';

const PEER = join(ROOT, 'test', 'fixtures', 'tcp-peer.ts');
const skip = natUnavailable();
if (skip) console.log(`# skipping two-NAT tests: ${skip}`);

interface Reach {
  status: string;
  reason: string;
}

/** A relay on the public LAN and a node behind each NAT, both joined with a plain `join`, started. */
async function twoNatMesh(
  topo: TwoNatTopology,
  root: string,
  base: number,
  /** Each node is added here as soon as it exists, so that `after` stops it if setup fails. */
  nodes: NsNode[],
): Promise<{ relay: NsNode; a: NsNode; b: NsNode }> {
  const relay = await nsNode(topo.pub, root, 'relay', topo.pubIp, base + 1, base + 11);
  const a = await nsNode(topo.natA, root, 'a', topo.natAIp, base + 2, base + 12);
  const b = await nsNode(topo.natB, root, 'b', topo.natBIp, base + 3, base + 13);
  nodes.push(relay, a, b);
  await relay.setup(['init']);
  await relay.start();
  const tok = await relay.run(['token', 'create', '--ttl', '10m', '--uses', '2']);
  assert.equal(tok.code, 0, tok.stderr);
  // No flag: what a new user types.
  await a.setup(['join', tok.stdout.trim()]);
  await b.setup(['join', tok.stdout.trim()]);
  await Promise.all([a.start(), b.start()]);
  return { relay, a, b };
}

const pathTo = async (n: NsNode, peer: string) =>
  (await n.json<{ name: string; connection: string }[]>(['peers'])).find((p) => p.name === peer)?.connection;

describe('two nodes behind two different NATs, plain join', { skip, timeout: 300_000 }, () => {
  let topo: TwoNatTopology;
  let root: string;
  const nodes: NsNode[] = [];
  const procs: ChildProcess[] = [];
  let relay: NsNode;
  let a: NsNode;
  let b: NsNode;
  let startedAt = 0;
  /** The forward a → echo.b's local port (made by the forward test). */
  let local = '';
  const echoOnce = () =>
    new Promise<string>((resolve) =>
      execFile(
        'ip',
        ['netns', 'exec', topo.natA, process.execPath, PEER, 'latency', '127.0.0.1', local, '3'],
        { timeout: 15_000 },
        (err, stdout, stderr) =>
          resolve(err ? `${stdout}${stderr}`.trim().split('\n').pop() || err.message || 'failed' : ''),
      ),
    );

  before(async () => {
    topo = createTwoNatTopology();
    root = mkdtempSync(join(tmpdir(), 'plexus-nat-pair-'));
    ({ relay, a, b } = await twoNatMesh(topo, root, 7500, nodes));
    startedAt = Date.now();
  });

  after(async () => {
    for (const p of procs) p.kill();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    topo?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('the gateways drop inbound connections', async () => {
    const connects = (ns: string, ip: string, port: number) =>
      new Promise<boolean>((resolve) =>
        execFile(
          'ip',
          ['netns', 'exec', ns, 'timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`],
          (err) => resolve(!err),
        ),
      );
    await Promise.all([
      connects(topo.pub, topo.natAIp, 7502).then((ok) => assert.equal(ok, false, 'relay → a')),
      connects(topo.natB, topo.natAIp, 7502).then((ok) => assert.equal(ok, false, 'b → a')),
      connects(topo.natA, topo.pubIp, 7501).then((ok) => assert.equal(ok, true, 'a → relay')),
    ]);
  });

  test('a forward from one to the other works within seconds of the join', async () => {
    const echo = spawn('ip', ['netns', 'exec', topo.natB, process.execPath, PEER, 'echo', '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    procs.push(echo);
    const port = await new Promise<number>((resolve, reject) => {
      echo.stdout?.once('data', (d) => resolve(Number(String(d).trim())));
      echo.once('exit', (code) => reject(new Error(`echo exited ${code}`)));
    });
    assert.equal((await b.run(['expose', 'echo', String(port)])).code, 0);
    const f = await a.json<{ listen: string }>(['forward', 'add', 'echo.b']);
    local = f.listen.split(':').pop() ?? '';
    let last = '';
    await waitFor(
      async () => {
        last = await echoOnce();
        return last === '';
      },
      30_000,
      'an echo through the forward a → echo.b',
      500,
    ).catch((err) => {
      throw new Error(`${err.message} (last attempt: ${last})`);
    });
    const took = Date.now() - startedAt;
    console.log(`# echo through a → b ${took} ms after both agents started`);
    const peers = await a.json<{ name: string; connection: string }[]>(['peers']);
    const path = peers.find((p) => p.name === 'b')?.connection;
    assert.ok(path && ['relayed', 'punched', 'direct'].includes(path), String(path));
  });

  test('each side says why it believes it is behind NAT; the relay says it is public', async () => {
    for (const n of [a, b]) {
      const s = (await waitFor(
        async () => {
          const st = await n.json<{ reachability?: Reach }>(['status']);
          return st.reachability?.status === 'behind-nat' ? st : false;
        },
        30_000,
        `${n.name} to find out it is behind NAT`,
        500,
      )) as { reachability?: Reach };
      assert.match(s.reachability?.reason ?? '', /dial-backs? failed/);
    }
    const r = (await waitFor(
      async () => {
        const st = await relay.json<{ reachability?: Reach }>(['status']);
        return st.reachability?.status === 'public' ? st : false;
      },
      30_000,
      'the relay to find out it is public',
      500,
    )) as { reachability?: Reach };
    assert.match(r.reachability?.reason ?? '', /dial-backs? succeeded/);
    const text = await a.run(['status']);
    assert.match(text.stdout, /reach\s+behind NAT/);
  });

  test('ping --until-direct gets a punched path through both NATs; peers shows it on both sides', async () => {
    const t0 = Date.now();
    const r = await a.run(['ping', 'b', '--until-direct', '--timeout', '40'], { timeoutMs: 60_000 });
    const lines = r.stdout.trim().split('\n');
    console.log(`# ping --until-direct: ${Date.now() - t0} ms\n${lines.map((l) => `#   ${l}`).join('\n')}`);
    if (r.code !== 0)
      for (const n of [a, b])
        console.log(
          n
            .output()
            .split('\n')
            .filter((l) => /punch/.test(l))
            .slice(-6)
            .join('\n'),
        );
    assert.equal(r.code, 0, r.stderr);
    // The last reply went over the direct path, from b's gateway's address.
    assert.match(
      lines.at(-1) ?? '',
      new RegExp(
        `^pong from b via /ip4/${topo.gwBIp.replaceAll('.', '\\.')}/tcp/\\d+ \\(punched\\) in [\\d.]+ ms$`,
      ),
    );
    const path = async (n: NsNode, peer: string) =>
      (await n.json<{ name: string; connection: string }[]>(['peers'])).find((p) => p.name === peer)
        ?.connection;
    assert.equal(await path(a, 'b'), 'punched');
    assert.equal(await path(b, 'a'), 'punched');
  });

  test('the forward still works once the path is punched', async () => {
    const t0 = Date.now();
    assert.equal(await echoOnce(), '');
    console.log(
      `# echo through a → b over the punched path: ${Date.now() - t0} ms (3 round trips + process start)`,
    );
  });
});

describe('two symmetric NATs whose gateways reset unsolicited SYNs: the punch is tried and fails', {
  skip,
  timeout: 300_000,
}, () => {
  let topo: TwoNatTopology;
  let root: string;
  const nodes: NsNode[] = [];
  const procs: ChildProcess[] = [];
  let relay: NsNode;
  let a: NsNode;
  let b: NsNode;

  before(async () => {
    // Symmetric too: with resets alone, a punch still succeeds now and then, when both SYNs
    // cross in flight (seen once in CI); a new source port per connection rules that out.
    topo = createTwoNatTopology({ dropUnsolicited: false, symmetric: true });
    root = mkdtempSync(join(tmpdir(), 'plexus-nat-pair-rst-'));
    ({ relay, a, b } = await twoNatMesh(topo, root, 7600, nodes));
  });
  after(async () => {
    for (const p of procs) p.kill();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    topo?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('ping --until-direct gets replies over the relay, says the punch failed, and exits 1', async () => {
    await waitFor(
      async () => (await pathTo(a, 'b')) === 'relayed',
      30_000,
      'a to reach b through the relay',
      500,
    );
    await waitFor(
      async () => (await a.json<{ reachability?: Reach }>(['status'])).reachability?.status === 'behind-nat',
      40_000,
      'a to find out it is behind NAT',
      500,
    );
    const r = await a.run(['ping', 'b', '--until-direct', '--timeout', '6'], { timeoutMs: 30_000 });
    console.log(`# ${r.stdout.trim().split('\n').join('\n# ')}\n# ${r.stderr.trim()}`);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^pong from b via relay relay in [\d.]+ ms$/m);
    assert.match(
      r.stderr,
      /direct connection not established within 6 s \(path: relayed; hole punch: .*ECONNREFUSED/,
    );
    assert.equal(await pathTo(a, 'b'), 'relayed');
  });

  /** A tcp-peer.ts server inside `ns` (`echo 0`, `source 0 BYTES`); resolves its port. */
  function serveIn(ns: string, args: string[]): Promise<number> {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, PEER, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    procs.push(p);
    return new Promise((resolve, reject) => {
      p.stdout?.once('data', (d) => resolve(Number(String(d).trim())));
      p.once('exit', (code) => reject(new Error(`tcp-peer ${args[0]} exited ${code}`)));
    });
  }
  /** Runs a tcp-peer.ts client inside `ns`; resolves the JSON it prints last. */
  const clientIn = <T>(ns: string, args: string[], timeout = 120_000) =>
    new Promise<T>((resolve, reject) =>
      execFile('ip', ['netns', 'exec', ns, process.execPath, PEER, ...args], { timeout }, (err, stdout) => {
        const last = stdout.trim().split('\n').pop();
        if (!last) return reject(err ?? new Error('no output'));
        resolve(JSON.parse(last) as T);
      }),
    );
  interface Tunnels {
    openedSpliced: number;
    dataPaths: Record<string, string>;
    splices: { active: number; waiting: number; total: number; bytes: number };
  }
  const tunnelsOf = async (n: NsNode) =>
    (await n.json<{ tunnels: { tunnels: Tunnels } }>(['status'])).tunnels.tunnels;
  const forwardTo = async (target: string) =>
    (await a.json<{ listen: string }>(['forward', 'add', target])).listen.split(':').pop() ?? '';
  const SIZE = 128 * 1024 * 1024;
  /** The forward a → bulk.b (a source of SIZE bytes per connection). */
  let bulk = '';
  let bulkSourcePort = 0;

  test('a forward between the two NATs rides a splice at the relay: intact, counted there', async () => {
    const [echoPort, sourcePort] = await Promise.all([
      serveIn(topo.natB, ['echo', '0']),
      serveIn(topo.natB, ['source', '0', String(SIZE)]),
    ]);
    bulkSourcePort = sourcePort;
    assert.equal((await b.run(['expose', 'echo', String(echoPort)])).code, 0);
    assert.equal((await b.run(['expose', 'bulk', String(sourcePort)])).code, 0);
    const echo = await forwardTo('echo.b');
    bulk = await forwardTo('bulk.b');
    const bId = (await a.json<{ name: string; peerId: string }[]>(['peers'])).find(
      (p) => p.name === 'b',
    )?.peerId;
    assert.ok(bId);
    // The first tunnels ride the relay's mesh stream while the data path is worked out: b's data
    // port cannot be dialled, b cannot dial a's back, so the two meet at the relay.
    const t0 = Date.now();
    let seen: Tunnels | undefined;
    await waitFor(
      async () => {
        const r = await clientIn<{ p50?: number }>(
          topo.natA,
          ['latency', '127.0.0.1', echo, '1'],
          15_000,
        ).catch((): { p50?: number } => ({}));
        seen = await tunnelsOf(a);
        return r.p50 !== undefined && seen.dataPaths[bId] === 'spliced';
      },
      60_000,
      'the data path a → b to be spliced at the relay',
      500,
    ).catch((err) => {
      throw new Error(`${err.message} (a: ${JSON.stringify(seen)})`);
    });
    console.log(`# data path a → b spliced at the relay ${Date.now() - t0} ms after the first tunnel`);
    const before = await tunnelsOf(a);
    const r = await clientIn<{ mbps: number; ok: boolean; intact: boolean }>(topo.natA, [
      'sink',
      '127.0.0.1',
      bulk,
      String(SIZE),
    ]);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.intact, true, 'the bytes arrived intact (the sink compares each with the pattern sent)');
    console.log(`# ${SIZE / 1024 / 1024} MiB a ← b through the relay's splice: ${r.mbps.toFixed(0)} MB/s`);
    const after = await tunnelsOf(a);
    assert.ok(after.openedSpliced > before.openedSpliced, JSON.stringify(after));
    const atRelay = await tunnelsOf(relay);
    assert.ok(atRelay.splices.total >= 1 && atRelay.splices.bytes >= SIZE, JSON.stringify(atRelay.splices));
    assert.match((await relay.run(['status'])).stdout, /splices\s+\d+ carried for other members/);
    const ls = await a.run(['forward', 'ls']);
    assert.match(ls.stdout.split('\n').find((l) => l.includes('bulk.b')) ?? '', /\bspliced\b/);
    // A refusal comes back over the splice like over any carrier.
    const unexposed = await forwardTo('b:9');
    const refused = await clientIn<{ p50?: number }>(
      topo.natA,
      ['latency', '127.0.0.1', unexposed, '1'],
      15_000,
    ).catch((): { p50?: number } => ({}));
    assert.equal(refused.p50, undefined);
    const rows = await a.json<{ target: string; carrier?: string; lastError?: string }[]>(['forward', 'ls']);
    const row = rows.find((x) => x.target === 'b:9');
    assert.match(row?.lastError ?? '', /^PORT_NOT_EXPOSED/, JSON.stringify(row));
    assert.equal(row?.carrier, 'spliced');
  });

  test('revoking b closes its spliced connections at the relay within 5 s', async () => {
    assert.ok(bulk && bulkSourcePort, 'the forward test ran');
    // A transfer that is still running when b is revoked.
    const running = clientIn<{ error?: string; ok?: boolean }>(topo.natA, [
      'sink',
      '127.0.0.1',
      bulk,
      String(SIZE * 64),
    ]);
    await waitFor(
      async () => (await tunnelsOf(relay)).splices.active > 0,
      10_000,
      'a splice at the relay',
      200,
    );
    const t0 = Date.now();
    assert.equal((await relay.run(['revoke', 'b'])).code, 0);
    // The clock starts when the revocation is in force on the relay (the command has returned);
    // on a loaded machine the CLI's own start-up took seconds of the old window.
    const revoked = Date.now();
    await waitFor(
      async () => (await tunnelsOf(relay)).splices.active === 0,
      5_000,
      'no splice left at the relay',
      100,
    );
    const r = await running;
    const took = Date.now() - revoked;
    console.log(`# revoke b: the command took ${revoked - t0} ms; the splice ended ${took} ms after it`);
    assert.notEqual(r.ok, true);
    assert.ok(took < 5_000, `the transfer through the splice ended ${took} ms after the revocation`);
  });
});
