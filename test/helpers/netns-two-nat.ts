/**
 * Two NAT'd LANs behind two different gateways, and a "public" LAN between them (issue 14):
 *
 *   natA (10.O.2.2) ─ gwA ─┐                     ┌─ gwB ─ natB (10.O.3.2)
 *                          └── pub bridge 10.O.1.0/24 ──┘   pub: 10.O.1.1 (the relay)
 *
 * Each gateway masquerades what its LAN sends out (new outbound connections to anywhere are
 * allowed, as at home or in a cloud VPC) and drops every inbound connection it did not see go
 * out first, including those to its own address (unless `dropUnsolicited: false`: then it
 * answers them with a reset, as a Linux host with no firewall does). Linux conntrack keeps the
 * source port when it can, so TCP simultaneous open through both gateways is possible in
 * principle, and with resets too when both SYNs happen to cross in flight. `symmetric: true`
 * makes each gateway pick a random source port per connection (a symmetric NAT, as some
 * carrier-grade NATs are): no SYN reaches the port the other side was told, so no punch can
 * succeed, whatever the timing. Needs what netns.ts needs (root, iproute2, iptables);
 * traffic stays inside the namespaces made here, and `destroy()` removes them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** The namespaces and addresses of the two-NAT topology. */
export interface TwoNatTopology {
  /** Namespace of the public LAN (the relay lives here). */
  pub: string;
  pubIp: string;
  /** Namespaces of the two NAT'd nodes, and their private addresses. */
  natA: string;
  natAIp: string;
  natB: string;
  natBIp: string;
  /** The gateways' public addresses (what the public LAN sees of each NAT'd node). */
  gwAIp: string;
  gwBIp: string;
  destroy(): void;
}

function sh(args: string[]): void {
  execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Creates the namespaces, the bridge, both gateways and their masquerading rules. */
export function createTwoNatTopology(
  opts: { dropUnsolicited?: boolean; symmetric?: boolean } = {},
): TwoNatTopology {
  const id = randomBytes(2).toString('hex');
  const p = `px6${id}`;
  const [pub, gwA, gwB, natA, natB] = ['pub', 'ga', 'gb', 'na', 'nb'].map((s) => `${p}${s}`);
  const o = (parseInt(id, 16) % 200) + 20;
  const ip = (lan: number, host: number) => `10.${o}.${lan}.${host}`;
  const created: string[] = [];
  const destroy = () => {
    for (const ns of created.reverse()) spawnSync('ip', ['netns', 'del', ns]);
    created.length = 0;
  };
  try {
    for (const ns of [pub, gwA, gwB, natA, natB]) {
      sh(['ip', 'netns', 'add', ns]);
      created.push(ns);
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const br = `${p}br`;
    sh(['ip', '-n', pub, 'link', 'add', br, 'type', 'bridge']);
    sh(['ip', '-n', pub, 'addr', 'add', `${ip(1, 1)}/24`, 'dev', br]);
    sh(['ip', '-n', pub, 'link', 'set', br, 'up']);
    const gateway = (gw: string, nat: string, tag: string, gwPub: string, lan: number) => {
      const [up, down, inner, host] = [`${p}${tag}u`, `${p}${tag}d`, `${p}${tag}i`, `${p}${tag}h`];
      // The gateway's public leg hangs on the bridge; its private leg faces the NAT'd node.
      sh(['ip', 'link', 'add', up, 'netns', pub, 'type', 'veth', 'peer', 'name', down, 'netns', gw]);
      sh(['ip', '-n', pub, 'link', 'set', up, 'master', br, 'up']);
      sh(['ip', 'link', 'add', inner, 'netns', gw, 'type', 'veth', 'peer', 'name', host, 'netns', nat]);
      sh(['ip', '-n', gw, 'addr', 'add', `${gwPub}/24`, 'dev', down]);
      sh(['ip', '-n', gw, 'addr', 'add', `${ip(lan, 1)}/24`, 'dev', inner]);
      sh(['ip', '-n', nat, 'addr', 'add', `${ip(lan, 2)}/24`, 'dev', host]);
      for (const [ns, dev] of [
        [gw, down],
        [gw, inner],
        [nat, host],
      ])
        sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
      sh(['ip', '-n', nat, 'route', 'add', 'default', 'via', ip(lan, 1)]);
      sh(['ip', 'netns', 'exec', gw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      const ipt = (...rule: string[]) => sh(['ip', 'netns', 'exec', gw, 'iptables', ...rule]);
      ipt(
        '-t',
        'nat',
        '-A',
        'POSTROUTING',
        '-o',
        down,
        '-j',
        'MASQUERADE',
        ...(opts.symmetric ? ['--random-fully'] : []),
      );
      ipt('-P', 'FORWARD', 'DROP');
      ipt('-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
      ipt('-A', 'FORWARD', '-i', inner, '-o', down, '-j', 'ACCEPT');
      // Like a router's own firewall, the gateway drops unsolicited connections to its own
      // address instead of answering them with a reset. Without this, the first SYN of a hole
      // punch (sent before the other side's SYN opened the way) is reset by the far gateway
      // and the punch fails with ECONNREFUSED; tested, see docs/mesh.md.
      if (opts.dropUnsolicited !== false) {
        ipt('-A', 'INPUT', '-i', down, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
        ipt('-A', 'INPUT', '-i', down, '-j', 'DROP');
      }
    };
    gateway(gwA, natA, 'a', ip(1, 254), 2);
    gateway(gwB, natB, 'b', ip(1, 253), 3);
    return {
      pub,
      pubIp: ip(1, 1),
      natA,
      natAIp: ip(2, 2),
      natB,
      natBIp: ip(3, 2),
      gwAIp: ip(1, 254),
      gwBIp: ip(1, 253),
      destroy,
    };
  } catch (err) {
    destroy();
    throw err;
  }
}
