/**
 * The kernel redirect's rule set (issue 18) and the socket count that drains an old release:
 * what goes to nft is one atomic replacement of the agent's table, only local destinations are
 * redirected, a port is never redirected for two apps, and nothing but integers reaches the rule
 * text. nft itself runs in test/integration/workloads-zero-downtime.test.ts (in a netns).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentPorts, configSchema } from '../../../src/config/index.ts';
import { silentLogger } from '../../../src/logging/index.ts';
import { KernelRedirect, type Redirect, renderTable } from '../../../src/workloads/kernel-redirect.ts';
import { countOpen } from '../../../src/workloads/private-port.ts';
import { TrafficRouter } from '../../../src/workloads/traffic-router.ts';

const routes = (entries: [string, Redirect][]) => new Map(entries);

describe('kernel redirect rules', () => {
  it('replace the whole table in one file, redirecting only local destinations, in both hooks', () => {
    const text = renderTable('plexus', routes([['web', { publicPort: 8080, port: 40123 }]]));
    const lines = text.split('\n');
    // Create-then-delete makes the delete valid on a first run; nft applies the file atomically.
    assert.deepEqual(lines.slice(0, 3), [
      'table inet plexus {}',
      'delete table inet plexus',
      'table inet plexus {',
    ]);
    assert.match(text, /type nat hook prerouting priority dstnat;/);
    assert.match(text, /type nat hook output priority -100;/);
    const rules = lines.filter((l) => l.includes('redirect'));
    assert.equal(rules.length, 2, 'one rule per hook');
    for (const r of rules)
      assert.equal(r.trim(), 'fib daddr type local tcp dport 8080 redirect to :40123 comment "app web"');
  });

  it('an empty set leaves an empty table (every rule removed)', () => {
    assert.doesNotMatch(renderTable('plexus', new Map()), /redirect/);
  });

  it('refuses a port redirected for two apps, and ports that are not 1-65535 integers', () => {
    assert.throws(() =>
      renderTable(
        'plexus',
        routes([
          ['a', { publicPort: 8080, port: 40001 }],
          ['b', { publicPort: 8080, port: 40002 }],
        ]),
      ),
    );
    for (const bad of [0, 65536, 1.5, Number.NaN, -1])
      assert.throws(() => renderTable('plexus', routes([['a', { publicPort: bad, port: 40001 }]])));
    assert.throws(() => renderTable('plexus', routes([['a', { publicPort: 8080, port: 70000 }]])));
  });

  it('puts no unvalidated text in the rules: an odd app name gets no comment, a bad table is refused', () => {
    const text = renderTable('plexus', routes([['x"; flush ruleset; "', { publicPort: 8080, port: 40001 }]]));
    assert.doesNotMatch(text, /flush|comment/);
    assert.throws(() => new KernelRedirect({ table: 'plexus; flush ruleset' }));
  });

  it('a missing nft makes the router fall back, saying why once', async () => {
    const logger = silentLogger();
    const kernel = new KernelRedirect({ nft: ['/nonexistent/nft'] });
    const router = new TrafficRouter(kernel, () => undefined, logger);
    await router.start(new Map());
    assert.equal(router.redirects, false);
    assert.match(router.fallbackReason ?? '', process.getuid?.() === 0 ? /not installed/ : /root/);
  });

  it('turned off in the config: the fallback, whatever nft can do', async () => {
    const router = new TrafficRouter(
      new KernelRedirect({ nft: ['/nonexistent/nft'] }),
      () => undefined,
      silentLogger(),
    );
    await router.start(routes([['web', { publicPort: 8080, port: 40001 }]]), true);
    assert.equal(router.redirects, false);
    assert.match(router.fallbackReason ?? '', /off in the config/);
  });
});

describe('open connections of a port', () => {
  // /proc/net/tcp: sl, local, remote, state…; 1F90 = 8080, 9C4B = 40011.
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue',
    '   0: 00000000:9C4B 00000000:0000 0A 00000000:00000000 00:00000000 00000000',
    '   1: 0100007F:9C4B 0100007F:D431 01 00000000:00000000 00:00000000 00000000',
    '   2: 0100007F:9C4B 0100007F:D432 08 00000000:00000000 00:00000000 00000000',
    '   3: 0100007F:9C4B 0100007F:D433 06 00000000:00000000 00:00000000 00000000',
    '   4: 0100007F:D431 0100007F:9C4B 01 00000000:00000000 00:00000000 00000000',
    '   5: 0100007F:1F90 0100007F:D434 01 00000000:00000000 00:00000000 00000000',
  ].join('\n');

  it('counts the server side of open connections on that port only (not its listener, TIME_WAIT or clients)', () => {
    assert.equal(countOpen(table, 40011), 2);
    assert.equal(countOpen(table, 8080), 1);
    assert.equal(countOpen(table, 1234), 0);
  });
});

describe("the agent's own ports", () => {
  it('are those its config fixes: mesh, default door, API, SOCKS, tunnel data and splices', () => {
    const config = configSchema.parse({
      node: { name: 'n1' },
      mesh: { listen: ['/ip4/0.0.0.0/tcp/7070'] },
      tunnels: { dataListen: '0.0.0.0:7080' },
    });
    assert.deepEqual(agentPorts(config), [7070, 7071, 7072, 7073, 7080]);
    const splices = configSchema.parse({
      node: { name: 'n1' },
      mesh: { listen: ['/ip4/0.0.0.0/tcp/7070'] },
      tunnels: { dataListen: '0.0.0.0:7080', splicePort: 7081 },
    });
    assert.deepEqual(agentPorts(splices), [7070, 7071, 7072, 7073, 7080, 7081]);
    assert.throws(() => configSchema.parse({ node: { name: 'n1' }, tunnels: { splicePort: 70000 } }));
    const off = configSchema.parse({
      node: { name: 'n1' },
      mesh: { listen: ['/ip4/127.0.0.1/tcp/4001'], door: 'off' },
      api: { listen: 'off' },
      socks: { listen: 'off' },
    });
    assert.deepEqual(agentPorts(off), [4001]);
  });
});
