/**
 * Tunnels between real agents (issue 6): expose, forwards, SOCKS5, refusals, restarts, and
 * proof that nothing leaks (tunnel counters and the agents' open file descriptors).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Cluster, freePort, startCluster, type TestNode, waitFor } from '../helpers/cluster.ts';
import { killProcessesUnder } from '../helpers/processes.ts';

const GiB = 1024 * 1024 * 1024;
const BLOCK = randomBytes(1024 * 1024);

/** A deterministic stream of `total` bytes: 1 MiB blocks, each stamped with its index. */
function* blocks(total: number): Generator<Buffer> {
  for (let i = 0, left = total; left > 0; i++) {
    const b = Buffer.from(BLOCK.subarray(0, Math.min(left, BLOCK.length)));
    b.writeUInt32BE(i, 0);
    left -= b.length;
    yield b;
  }
}

/** Writes every block with backpressure; returns the sha256 of what was written. */
async function send(socket: Socket, total: number): Promise<string> {
  const h = createHash('sha256');
  for (const b of blocks(total)) {
    h.update(b);
    // once() rejects if the socket errors (a reset) while we wait.
    if (!socket.write(b)) await once(socket, 'drain');
  }
  return h.digest('hex');
}

/** Reads until FIN; resolves the sha256 and byte count, rejects on reset. */
function receive(socket: Socket, close = true): Promise<{ sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    socket.on('data', (d: Buffer) => {
      h.update(d);
      bytes += d.length;
    });
    socket.once('end', () => {
      // Our side is done too unless the caller answers: close it, or the tunnel rightly stays
      // half-open.
      if (close) socket.end();
      resolve({ sha: h.digest('hex'), bytes });
    });
    socket.once('error', reject);
  });
}

function listen(handler: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      handler(s);
    });
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    );
  });
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends `msg`, half-closes, and reads everything back; rejects on reset. */
async function roundTrip(port: number, msg: Buffer): Promise<Buffer> {
  const s = await dial(port);
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => {
      s.destroy();
      resolve(Buffer.concat(chunks));
    });
    s.once('error', reject);
    s.end(msg);
  });
}

/** What a client of a forward sees: `ok` data, `reset` (refused), or `eof` with no data. */
async function outcome(port: number): Promise<'ok' | 'reset' | 'eof'> {
  try {
    const got = await roundTrip(port, Buffer.from('ping'));
    return got.toString() === 'ping' ? 'ok' : 'eof';
  } catch {
    return 'reset';
  }
}

interface TunnelStatus {
  services: { name: string; port: number; source: string }[];
  socks: string | null;
  tunnels: {
    active: number;
    inbound: number;
    outbound: number;
    openedData: number;
    bytesSent: number;
    bytesReceived: number;
    dataPooled: number;
    dataWaiting: number;
    dataPaths?: Record<string, string>;
  };
  sockets: { forwardClients: number; socksClients: number };
}

const tunnelsOf = async (n: TestNode) => (await n.json<{ tunnels: TunnelStatus }>(['status'])).tunnels;
const fds = (n: TestNode) => readdirSync(`/proc/${n.proc?.pid}/fd`).length;

/** Waits until no tunnel or client socket is open on either node, and fds are back near `base`. */
async function assertNoLeaks(nodes: TestNode[], base: number[]): Promise<void> {
  let seen = '';
  await waitFor(
    async () => {
      const state = [];
      for (const n of nodes) state.push({ ...(await tunnelsOf(n)), fds: fds(n) });
      seen = JSON.stringify(state.map((x, i) => ({ ...x.tunnels, ...x.sockets, fds: x.fds, base: base[i] })));
      // A few fds come and go with the mesh (dials, sqlite); a leak is one or two per connection.
      // Data connections kept ready for the next tunnel (a few per peer; docs/tunnels.md) are
      // bounded, and counted.
      return state.every(
        (x, i) =>
          x.tunnels.active === 0 &&
          x.sockets.forwardClients === 0 &&
          x.sockets.socksClients === 0 &&
          x.tunnels.dataPooled <= 4 &&
          x.tunnels.dataWaiting <= 4 &&
          x.fds <= base[i] + 8 + x.tunnels.dataPooled + x.tunnels.dataWaiting,
      );
    },
    // Below the pool's idle close (POOL_IDLE_MS, 20 s), so that an over-full pool is a failure
    // here rather than something the idle timer quietly mends.
    15_000,
    'tunnels, client sockets and fds back to their baseline',
    250,
  ).catch((err) => {
    throw new Error(`${(err as Error).message}; last seen ${seen}`);
  });
}

async function addForward(n: TestNode, ...args: string[]): Promise<{ id: string; port: number }> {
  const f = await n.json<{ id: string; listen: string }>(['forward', 'add', ...args]);
  return { id: f.id, port: Number(f.listen.split(':').pop()) };
}

function curl(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '20', ...args], (err, stdout) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
    );
  });
}

/** A raw SOCKS5 exchange: greeting with `methods`, then `request`; returns the reply bytes. */
async function socks(
  port: number,
  methods: number[],
  request?: Buffer,
): Promise<{ method: number; reply?: number }> {
  const s = await dial(port);
  const got: Buffer[] = [];
  let waiter: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    got.push(d);
    waiter?.();
  });
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.on('close', () => waiter?.());
  s.on('error', () => {});
  const read = async (n: number) => {
    for (let i = 0; i < 100 && Buffer.concat(got).length < n && !s.destroyed; i++)
      await new Promise<void>((r) => {
        waiter = r;
        setTimeout(r, 100);
      });
    const all = Buffer.concat(got);
    got.length = 0;
    if (all.length > n) got.push(all.subarray(n));
    return all.subarray(0, n);
  };
  s.write(Buffer.from([5, methods.length, ...methods]));
  const greet = await read(2);
  let reply: number | undefined;
  if (request && greet[1] === 0) {
    s.write(request);
    reply = (await read(10))[1];
  }
  s.destroy();
  await closed;
  return { method: greet[1], reply };
}

function socksRequest(cmd: number, host: string | number[], port: number): Buffer {
  const p = [port >> 8, port & 0xff];
  if (Array.isArray(host)) return Buffer.from([5, cmd, 0, 1, ...host, ...p]);
  return Buffer.from([5, cmd, 0, 3, host.length, ...Buffer.from(host), ...p]);
}

/**
 * One contract, two carriers (docs/tunnels.md, data connections): tunnels over their own data
 * connections (the default on a direct link), and over the mesh stream (what a relayed link or
 * a filtered data port gets; forced here with `tunnels.dataListen: off`). The second run also
 * starts its agents from the TypeScript sources instead of the bundle (src/runtime/launcher.mjs),
 * so that both ways of starting an agent stay tested.
 */
const carriers = [
  { carrier: 'data', env: {} },
  { carrier: 'stream', env: { PLEXUS_TUNNELS__DATA_LISTEN: 'off', PLEXUS_NO_BUNDLE: '1' } },
] as const;

for (const { carrier, env } of carriers)
  describe(`tunnels between agents (${carrier} carrier)`, { timeout: 900_000 }, () => {
    let cluster: Cluster;
    let n1: TestNode;
    let n2: TestNode;
    let base: number[];
    const servers: Server[] = [];
    let echoPort: number;

    before(async () => {
      cluster = await startCluster(2, { env });
      [n1, n2] = cluster.nodes;
      const echo = await listen((s) => s.pipe(s));
      servers.push(echo.server);
      echoPort = echo.port;
      base = [fds(n1), fds(n2)];
    });
    after(async () => {
      for (const s of servers) s.close();
      await cluster?.stop();
    });

    test('expose lists the service in status; unexpose removes it; bad names are refused', async () => {
      assert.equal((await n2.run(['expose', 'echo', String(echoPort)])).code, 0);
      const t = await tunnelsOf(n2);
      assert.deepEqual(t.services, [{ name: 'echo', port: echoPort, source: 'manual' }]);
      assert.match((await n2.run(['status'])).stdout, new RegExp(`services echo:${echoPort}`));
      assert.equal((await n2.run(['expose', 'Bad_Name', '80'])).code, 1);
      assert.equal((await n2.run(['expose', 'x', '70000'])).code, 2);
      assert.equal((await n2.run(['expose', 'tmp', '1'])).code, 0);
      assert.equal((await n2.run(['unexpose', 'tmp'])).code, 0);
      const r = await n2.run(['unexpose', 'tmp']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no service 'tmp'/);
      assert.deepEqual(
        (await tunnelsOf(n2)).services.map((s) => s.name),
        ['echo'],
      );
    });

    test('tunnels use the carrier under test', async () => {
      const f = await addForward(n1, 'echo.n2');
      // The first tunnels to a peer may ride the mesh stream while its data port is tried.
      let t = await tunnelsOf(n1);
      const before = t.tunnels;
      let pings = 0;
      // The stream carrier never opens one: a few tunnels show that without waiting out the loop.
      for (let i = 0; i < (carrier === 'data' ? 40 : 5) && t.tunnels.openedData === 0; i++) {
        assert.equal(await outcome(f.port), 'ok');
        pings++;
        t = await tunnelsOf(n1);
      }
      if (carrier === 'data') assert.ok(t.tunnels.openedData > 0, JSON.stringify(t.tunnels));
      else assert.equal(t.tunnels.openedData, 0);
      // Status counts every byte both ways, those a forward sends before the far side's answer
      // included (each 'ping' leaves with the tunnel's header).
      await waitFor(
        async () => (await tunnelsOf(n1)).tunnels.bytesReceived - before.bytesReceived === 4 * pings,
        10_000,
        'the echoes counted',
      );
      t = await tunnelsOf(n1);
      assert.equal(t.tunnels.bytesSent - before.bytesSent, 4 * pings, JSON.stringify(t.tunnels));
      await n1.run(['forward', 'rm', f.id]);
    });

    // 1 GiB on the data carrier; the stream carrier (the fallback, ~3x slower) carries 256 MiB,
    // still hundreds of its windows, to keep the suite within its time.
    const SIZE = carrier === 'data' ? GiB : GiB / 4;
    const label = `${SIZE / 1024 / 1024} MiB`;
    test(`a forward carries ${label} intact in both directions, with half-close`, {
      timeout: 600_000,
    }, async () => {
      // Download: n2's source writes SIZE then FIN; upload: the client writes SIZE then FIN,
      // and the far end answers with its hash only after it saw the FIN (half-close).
      let sourceSha = '';
      const source = await listen((s) => {
        s.resume();
        send(s, SIZE).then((sha) => {
          sourceSha = sha;
          s.end();
        });
      });
      const sink = await listen((s) => {
        receive(s, false).then(({ sha, bytes }) => s.end(`${sha} ${bytes}`));
      });
      servers.push(source.server, sink.server);
      await n2.run(['expose', 'source', String(source.port)]);
      await n2.run(['expose', 'sink', String(sink.port)]);
      const down = await addForward(n1, 'source.n2');
      const up = await addForward(n1, '127.0.0.1:0', 'n2:' + sink.port);

      const t0 = Date.now();
      const got = await receive(await dial(down.port)).catch((err) => {
        const logs = (n: TestNode) =>
          n
            .output()
            .split('\n')
            .filter((l) => l.includes('tunnel'))
            .slice(-5)
            .join('\n');
        throw new Error(`download: ${err.message}\nn1: ${logs(n1)}\nn2: ${logs(n2)}`);
      });
      assert.equal(got.bytes, SIZE);
      assert.equal(got.sha, sourceSha);
      const t1 = Date.now();

      const s = await dial(up.port);
      const answer = new Promise<string>((resolve, reject) => {
        let text = '';
        s.on('data', (d) => {
          text += d;
        });
        s.once('end', () => resolve(text));
        s.once('error', reject);
      });
      const sentSha = await send(s, SIZE);
      s.end();
      assert.equal(await answer, `${sentSha} ${SIZE}`);
      const t2 = Date.now();
      console.log(
        `${carrier}: ${label} down ${(SIZE / 1e6 / ((t1 - t0) / 1000)).toFixed(0)} MB/s, up ${(SIZE / 1e6 / ((t2 - t1) / 1000)).toFixed(0)} MB/s`,
      );
      await assertNoLeaks([n1, n2], base);
    });

    test('200 concurrent short connections all echo', async () => {
      const f = await addForward(n1, 'echo.n2');
      const msgs = Array.from({ length: 200 }, (_, i) =>
        Buffer.from(`hello ${i} ${randomBytes(512).toString('hex')}`),
      );
      const got = await Promise.all(msgs.map((m) => roundTrip(f.port, m)));
      for (const [i, m] of msgs.entries()) assert.deepEqual(got[i], m);
      await assertNoLeaks([n1, n2], base);
    });

    test('refusals: unknown node, unknown service, unexposed port, nothing listening', async () => {
      const bad = await n1.run(['forward', 'add', 'echo.nonode']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /no node named 'nonode'/);
      assert.equal((await n1.run(['forward', 'add', 'not a target'])).code, 1);

      const { server: closed, port: deadPort } = await listen(() => {});
      await new Promise<void>((r) => closed.close(() => r()));
      await n2.run(['expose', 'dead', String(deadPort)]);
      for (const [target, code] of [
        ['nosuch.n2', 'UNKNOWN_SERVICE'],
        [`n2:${echoPort + 1 === deadPort ? echoPort + 2 : echoPort + 1}`, 'PORT_NOT_EXPOSED'],
        ['dead.n2', 'TARGET_REFUSED'],
      ] as const) {
        const f = await addForward(n1, target);
        const t0 = Date.now();
        assert.equal(await outcome(f.port), 'reset', target);
        assert.ok(Date.now() - t0 < 3000, `${target} refused at once`);
        const row = (await n1.json<{ id: string; lastError?: string }[]>(['forward', 'ls'])).find(
          (x) => x.id === f.id,
        );
        assert.match(row?.lastError ?? '', new RegExp(`^${code}`), target);
        assert.equal((await n1.run(['forward', 'rm', f.id])).code, 0);
      }
      assert.equal((await n1.run(['forward', 'rm', 'fw-nope'])).code, 1);
      await assertNoLeaks([n1, n2], base);
    });

    test('a target dying mid-transfer resets the client; the agents keep running', async () => {
      const dying = await listen((s) => {
        s.resume();
        const b = randomBytes(1024 * 1024);
        let n = 0;
        const pump = () => {
          while (n < 64) {
            n++;
            if (!s.write(b)) return void s.once('drain', pump);
          }
          s.resetAndDestroy();
        };
        pump();
      });
      servers.push(dying.server);
      await n2.run(['expose', 'dying', String(dying.port)]);
      const f = await addForward(n1, 'dying.n2');
      await assert.rejects(receive(await dial(f.port)), /ECONNRESET|reset/i);
      assert.equal(await outcome((await addForward(n1, 'echo.n2')).port), 'ok');
      await assertNoLeaks([n1, n2], base);
    });

    test('SOCKS5: curl by mesh name; garbage, BIND, UDP, IPs and outside names refused', async () => {
      const web = await listen((s) => {
        s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello'));
      });
      servers.push(web.server);
      await n2.run(['expose', 'web', String(web.port)]);
      const proxy = `127.0.0.1:${n1.socksPort}`;
      for (const url of [
        'http://web.n2/',
        'http://web.n2.plexus/',
        `http://n2:${web.port}/`,
        `http://n2.plexus:${web.port}/`,
      ]) {
        const r = await curl(['--socks5-hostname', proxy, url]);
        assert.equal(r.code, 0, url);
        assert.equal(r.stdout, 'hello', url);
      }
      // curl exit 97: the proxy refused the connection.
      assert.equal((await curl(['--socks5-hostname', proxy, 'http://example.com/'])).code, 97);
      assert.equal((await curl(['--socks5-hostname', proxy, 'http://nosuch.n2/'])).code, 97);

      assert.deepEqual(await socks(n1.socksPort, [2]), { method: 0xff, reply: undefined }); // only "no auth"
      assert.equal((await socks(n1.socksPort, [0], socksRequest(2, 'web.n2', 80))).reply, 0x07); // BIND
      assert.equal((await socks(n1.socksPort, [0], socksRequest(3, 'web.n2', 80))).reply, 0x07); // UDP
      assert.equal((await socks(n1.socksPort, [0], socksRequest(1, [127, 0, 0, 1], web.port))).reply, 0x02);
      assert.equal((await socks(n1.socksPort, [0], socksRequest(1, 'www.example.com', 80))).reply, 0x02);
      // Two labels look like service.node: refused because there is no such node.
      assert.equal((await socks(n1.socksPort, [0], socksRequest(1, 'example.com', 80))).reply, 0x04);
      assert.equal((await socks(n1.socksPort, [0], socksRequest(1, 'web.nonode', 80))).reply, 0x04);
      assert.equal((await socks(n1.socksPort, [0], socksRequest(1, 'nosuch.n2', 80))).reply, 0x05);
      assert.equal((await socks(n1.socksPort, [0], socksRequest(1, 'n2', 1))).reply, 0x02); // unexposed port
      // Garbage: not SOCKS5 at all, then a lying length; both just get closed.
      for (const junk of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.from([5, 200, 1, 2])]) {
        const s = await dial(n1.socksPort);
        s.on('error', () => {});
        s.end(junk);
        await new Promise((r) => s.once('close', r));
      }
      await assertNoLeaks([n1, n2], base);
    });

    test('an app with a port is exposed under its own name and reachable by SOCKS', async () => {
      const appPort = await freePort();
      const fixture = resolve(import.meta.dirname, '..', 'fixtures', 'workloads', 'app');
      const r = await n2.run([
        'deploy',
        'shop',
        '--dir',
        fixture,
        '--cmd',
        `${process.execPath} server.cjs`,
        '--port',
        String(appPort),
        '--health',
        `http://:${appPort}/health`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      try {
        const t = await tunnelsOf(n2);
        assert.deepEqual(
          t.services.find((x) => x.name === 'shop'),
          { name: 'shop', port: appPort, source: 'app' },
        );
        const got = await curl(['--socks5-hostname', `127.0.0.1:${n1.socksPort}`, 'http://shop.n2/health']);
        assert.equal(got.code, 0);
        assert.equal((await n2.run(['unexpose', 'shop'])).code, 1); // owned by the app
      } finally {
        await n2.run(['rm', 'shop']);
        killProcessesUnder(n2.dataDir);
      }
    });

    test('a thousand connections at once all echo (past the per-peer limit they wait), nothing leaks', async () => {
      const f = await addForward(n1, 'echo.n2');
      const results = await Promise.all(Array.from({ length: 1000 }, () => outcome(f.port)));
      const ok = results.filter((r) => r === 'ok').length;
      console.log(`1000 at once: ${ok} echoed, ${results.length - ok} failed`);
      assert.equal(ok, 1000);
      assert.equal(await outcome(f.port), 'ok');
      await assertNoLeaks([n1, n2], base);
    });

    test('forwards survive a restart of either agent; a down target is refused at once', async () => {
      const f = await addForward(n1, '127.0.0.1:0', 'echo.n2');
      // The client side restarts: the forward listens again on the same port.
      await n1.stop('SIGKILL');
      await n1.start();
      const ls = await n1.json<{ id: string; listen: string; state: string }[]>(['forward', 'ls']);
      const row = ls.find((x) => x.id === f.id);
      assert.equal(row?.state, 'listening');
      assert.equal(Number(row?.listen.split(':').pop()), f.port);
      await waitFor(async () => (await outcome(f.port)) === 'ok', 30_000, 'forward to work after n1 restart');

      // The target side goes away: refused at once, and works again when it is back.
      await n2.stop('SIGKILL');
      await waitFor(async () => (await outcome(f.port)) === 'reset', 15_000, 'refusal while n2 is down');
      const t0 = Date.now();
      assert.equal(await outcome(f.port), 'reset');
      assert.ok(Date.now() - t0 < 3000, `refused in ${Date.now() - t0} ms`);
      await n2.start();
      await waitFor(async () => (await outcome(f.port)) === 'ok', 30_000, 'forward to work after n2 is back');
      base = [fds(n1), fds(n2)];
      await assertNoLeaks([n1, n2], base);
    });

    // Last: it revokes n2.
    test('revoking the far node closes its open tunnels and ready data connections within 5 s', async () => {
      assert.equal((await n2.run(['expose', 'echo-last', String(echoPort)])).code, 0);
      const f = await addForward(n1, 'echo-last.n2');
      const s = connect({ port: f.port, host: '127.0.0.1' });
      s.on('error', () => {});
      s.write('ping');
      // Once this failed under load (a reset ~10 s in, the open deadline): say why, if it does again.
      await once(s, 'data').catch(async (err) => {
        const ls = await n1.json<{ id: string; lastError?: string; via?: string }[]>(['forward', 'ls']);
        const row = ls.find((x) => x.id === f.id);
        const t = await tunnelsOf(n1);
        throw new Error(
          `no echo (${(err as Error).message}): forward ${JSON.stringify(row)}, n1 data paths ` +
            `${JSON.stringify(t.tunnels.dataPaths)}; n1 log: ${n1.output().slice(-3000)}`,
        );
      });
      // A reset is what a cut tunnel looks like: wait for the close, whatever came before it.
      const closed = new Promise((r) => s.once('close', r));
      const t0 = Date.now();
      assert.equal((await n1.run(['revoke', 'n2'])).code, 0);
      await closed;
      const took = Date.now() - t0;
      assert.ok(took < 5000, `the tunnel closed ${took} ms after the revocation`);
      await waitFor(
        async () =>
          (await tunnelsOf(n1)).tunnels.dataPooled === 0 && (await tunnelsOf(n1)).tunnels.active === 0,
        5000,
        "n1 to hold nothing of n2's",
      );
    });
  });
