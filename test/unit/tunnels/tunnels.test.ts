/** Tunnels (issue 6): addresses, handshake frames, services, forwards' table, SOCKS codes. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { openStore } from '../../../src/store/index.ts';
import {
  encodeFrame,
  ForwardRepo,
  formatTarget,
  parseListen,
  parseReply,
  parseRequest,
  parseTarget,
  ServiceDirectory,
  ServiceRepo,
  SocksReply,
  socksReplyFor,
  socksTarget,
  tunnelMigrations,
} from '../../../src/tunnels/index.ts';

describe('mesh addresses', () => {
  test('forward targets: service.node and node:port, with or without .plexus', () => {
    assert.deepEqual(parseTarget('db.web-2'), { service: 'db', node: 'web-2' });
    assert.deepEqual(parseTarget('db.web-2.plexus'), { service: 'db', node: 'web-2' });
    assert.deepEqual(parseTarget('web-2:5432'), { node: 'web-2', port: 5432 });
    assert.deepEqual(parseTarget('WEB-2.plexus:5432'), { node: 'web-2', port: 5432 });
    assert.equal(formatTarget(parseTarget('db.web-2.plexus')), 'db.web-2');
    for (const bad of [
      'db',
      'a.b.c',
      'web-2:0',
      'web-2:65536',
      'web-2:x',
      ':80',
      'Bad_Name.n1',
      'x'.repeat(400),
    ])
      assert.throws(() => parseTarget(bad), { name: 'InvalidTargetError' }, bad);
  });

  test('SOCKS names: only mesh forms resolve, anything else is refused', () => {
    assert.deepEqual(socksTarget('web.n2', 80), { service: 'web', node: 'n2' });
    assert.deepEqual(socksTarget('web.n2.plexus', 80), { service: 'web', node: 'n2' });
    assert.deepEqual(socksTarget('n2', 5432), { node: 'n2', port: 5432 });
    assert.deepEqual(socksTarget('n2.plexus.', 5432), { node: 'n2', port: 5432 });
    assert.equal(socksTarget('www.example.com', 80), undefined);
    assert.equal(socksTarget('127.0.0.1', 80), undefined);
    assert.equal(socksTarget('', 80), undefined);
    assert.equal(socksTarget('evil_host.n2', 80), undefined);
  });

  test('forward listen addresses', () => {
    assert.deepEqual(parseListen(undefined), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseListen('15432'), { host: '127.0.0.1', port: 15432 });
    assert.deepEqual(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
    assert.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
    for (const bad of ['x', '1:2:3', '70000', 'host:'])
      assert.throws(() => parseListen(bad), { name: 'ListenError' }, bad);
  });
});

describe('handshake frames', () => {
  test('varint length prefix, then JSON', () => {
    const f = encodeFrame({ service: 'db' });
    assert.equal(f[0], f.length - 1);
    assert.deepEqual(JSON.parse(Buffer.from(f.subarray(1)).toString()), { service: 'db' });
    const long = encodeFrame({ pad: 'x'.repeat(300) });
    assert.equal(long[0] & 0x80, 0x80); // two-byte prefix
    assert.equal((long[0] & 0x7f) | (long[1] << 7), long.length - 2);
  });

  test('requests are {service} or {port}, nothing else', () => {
    assert.deepEqual(parseRequest({ service: 'db' }), { service: 'db' });
    assert.deepEqual(parseRequest({ port: 5432 }), { port: 5432 });
    for (const bad of [
      null,
      [],
      {},
      { service: 'DB' },
      { port: 0 },
      { port: 1.5 },
      { service: 'a', port: 1 },
      'db',
    ])
      assert.throws(() => parseRequest(bad), { name: 'TunnelProtocolError' }, JSON.stringify(bad));
  });

  test('replies carry a code and a bounded message', () => {
    assert.deepEqual(parseReply({ ok: true }), { ok: true });
    const r = parseReply({ ok: false, code: 'TARGET_REFUSED', message: 'x'.repeat(2000) });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.message.length, 512);
    assert.throws(() => parseReply({ ok: 'yes' }), { name: 'TunnelProtocolError' });
  });
});

describe('services and forwards tables', () => {
  const db = () => openStore(':memory:', tunnelMigrations);

  test('exposed services persist; providers add apps; manual exposure wins a clash', () => {
    const store = db();
    const dir = new ServiceDirectory(new ServiceRepo(store), 'n1');
    dir.expose('db', 5432);
    dir.expose('db', 5433); // re-expose replaces the port
    let apps = [
      { name: 'web', port: 8080 },
      { name: 'db', port: 1 },
      { name: 'Bad', port: 80 },
      { name: 'x', port: 0 },
    ];
    dir.addProvider('app', () => apps);
    assert.deepEqual(dir.list(), [
      { name: 'db', port: 5433, source: 'manual' },
      { name: 'web', port: 8080, source: 'app' },
    ]);
    assert.equal(dir.portOf('web'), 8080);
    assert.equal(dir.isExposedPort(8080), true);
    assert.equal(dir.isExposedPort(1), false);
    assert.throws(() => dir.unexpose('web'), { code: 'SERVICE_PROVIDED' });
    apps = [];
    assert.equal(dir.portOf('web'), undefined);
    // A fresh directory over the same table sees the stored service.
    assert.deepEqual(new ServiceDirectory(new ServiceRepo(store), 'n1').list(), [
      { name: 'db', port: 5433, source: 'manual' },
    ]);
    dir.unexpose('db');
    assert.throws(() => dir.unexpose('db'), { name: 'UnknownServiceError', code: 'UNKNOWN_SERVICE' });
    assert.deepEqual(dir.list(), []);
  });

  test('forwards persist and one listen address holds one forward', () => {
    const repo = new ForwardRepo(db());
    const row = { id: 'fw-1', listenHost: '127.0.0.1', listenPort: 15432, target: 'db.n2', createdAt: 1 };
    repo.insert(row);
    assert.throws(() => repo.insert({ ...row, id: 'fw-2' }), /UNIQUE/);
    assert.deepEqual(repo.list(), [row]);
    assert.equal(repo.remove('fw-1'), true);
    assert.equal(repo.remove('fw-1'), false);
    assert.deepEqual(repo.list(), []);
  });
});

test('SOCKS reply codes follow RFC 1928', () => {
  assert.equal(socksReplyFor('UNKNOWN_NODE'), SocksReply.hostUnreachable);
  assert.equal(socksReplyFor('PEER_UNREACHABLE'), SocksReply.hostUnreachable);
  assert.equal(socksReplyFor('TARGET_REFUSED'), SocksReply.connectionRefused);
  assert.equal(socksReplyFor('UNKNOWN_SERVICE'), SocksReply.connectionRefused);
  assert.equal(socksReplyFor('PORT_NOT_EXPOSED'), SocksReply.notAllowed);
  assert.equal(socksReplyFor('TUNNEL_LIMIT'), SocksReply.generalFailure);
});

test('xsalsa20 (pnet) keeps working when instances grow the shared WASM memory in turn', async () => {
  const XSalsa20 = createRequire(import.meta.url)('xsalsa20') as (
    n: Uint8Array,
    k: Uint8Array,
  ) => { update(b: Uint8Array): Uint8Array };
  const [a, b, ref] = [x(0), x(1), x(0)];
  function x(n: number) {
    return XSalsa20(new Uint8Array(24).fill(n), new Uint8Array(32));
  }
  // Unfixed, alternating 1..7 MiB updates exhaust the 62.5 MiB memory within a few rounds.
  for (let i = 0; i < 100; i++) {
    const size = ((i % 7) + 1) << 20;
    b.update(new Uint8Array(size));
    const got = a.update(new Uint8Array(size));
    assert.deepEqual(Buffer.from(got), Buffer.from(ref.update(new Uint8Array(size))));
  }
});
