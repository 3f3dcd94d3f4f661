/**
 * The local port handover (issue 18): it binds where the release binds (read from /proc/net), moves
 * new connections to a new upstream while open ones stay, counts what is open per upstream (the
 * drain), closes a client whose upstream is gone instead of leaving it hanging, and refuses
 * connections past its cap.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../../src/logging/index.ts';
import { connectHost, parseListeners } from '../../../src/workloads/listen-address.ts';
import { bindHosts, LocalHandover } from '../../../src/workloads/local-handover.ts';
import { freePort } from '../../helpers/cluster.ts';

const servers: Server[] = [];
const sockets: Socket[] = [];
after(() => {
  for (const c of sockets) c.destroy();
  for (const s of servers) s.close();
});

/** An upstream on loopback that answers every connection with `name` and keeps it open. */
async function upstream(name: string): Promise<number> {
  const s = createServer((c) => {
    sockets.push(c);
    c.write(name);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

/** Connects to `port` and resolves with the first bytes and the socket. */
function hello(port: number): Promise<{ text: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    socket.once('data', (d) => resolve({ text: d.toString(), socket }));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed without data')));
  });
}

describe('where the handover listens', () => {
  it('reads listeners from /proc/net/tcp and tcp6 lines', () => {
    const v4 = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1',
      '   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1',
      '   3: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1',
    ].join('\n');
    assert.deepEqual(parseListeners(v4, 8080), ['127.0.0.1', '0.0.0.0'], 'LISTEN lines of that port only');
    const v6 = [
      '   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A x',
      '   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A x',
      '   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A x',
      '   3: zz:1F90 00000000000000000000000000000000:0000 0A x',
    ].join('\n');
    assert.deepEqual(parseListeners(v6, 8080), ['::', '::1', '127.0.0.1']);
    assert.equal(connectHost('0.0.0.0'), '127.0.0.1');
    assert.equal(connectHost('::'), '::1');
  });

  it('binds no wider than the release: loopback stays loopback, a wildcard covers its family', () => {
    assert.deepEqual(bindHosts(['127.0.0.1']), ['127.0.0.1']);
    assert.deepEqual(bindHosts(['127.0.0.1', '::1']), ['127.0.0.1', '::1']);
    assert.deepEqual(bindHosts(['0.0.0.0', '127.0.0.1']), ['0.0.0.0']);
    assert.deepEqual(bindHosts(['::']), ['::'], 'dual stack, as Node binds it');
    assert.deepEqual(bindHosts(['0.0.0.0', '::']), ['0.0.0.0', '::']);
  });
});

describe('the local handover', () => {
  it('switches new connections, keeps open ones, counts them per upstream, and lets go of the port', async () => {
    const h = new LocalHandover({}, { logger: silentLogger() });
    const pub = await freePort();
    const a = await upstream('a');
    const b = await upstream('b');
    await h.route('web', pub, a);
    const first = await hello(pub);
    assert.equal(first.text, 'a');
    await h.route('web', pub, b);
    assert.equal((await hello(pub)).text, 'b', 'a new connection goes to the new release');
    assert.equal(h.openTo(a), 1, 'the open one still counts against the old release');
    first.socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.openTo(a), 0, 'drained');
    await h.release('web');
    await assert.rejects(hello(pub), 'the port is free again');
    await h.close();
  });

  it('closes a client whose release is gone, and refuses connections past its cap', async () => {
    const h = new LocalHandover({ maxConnections: 2 }, { logger: silentLogger() });
    const pub = await freePort();
    const up = await upstream('u');
    await h.route('web', pub, up);
    const held = [await hello(pub), await hello(pub)];
    await assert.rejects(hello(pub), 'the third connection is refused');
    for (const c of held) c.socket.destroy();
    // A release that stopped listening: the client is closed, not left hanging.
    const gone = await freePort();
    await h.route('web', pub, gone).catch(() => {});
    await assert.rejects(hello(pub));
    await h.close();
  });
});
