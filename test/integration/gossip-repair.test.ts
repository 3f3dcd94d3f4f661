/**
 * gossipsub keeps one outbound stream per peer and never looks at it again (see
 * src/mesh/gossip-repair.ts). Two real libp2p nodes on loopback, built as the agent builds
 * them: node A's outbound stream to B is left dead in gossipsub's table, exactly what the
 * reconnect race leaves behind; B stops hearing A. One repair pass gives A a live stream
 * and B hears A again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PeerId, Stream } from '@libp2p/interface';
import pino from 'pino';
import { repairGossipStreams } from '../../src/mesh/gossip-repair.ts';
import type { PlexusLibp2p } from '../../src/mesh/node.ts';
import { loopbackNode } from '../helpers/libp2p-nodes.ts';

const TOPIC = 'plexus/test/1';
const logger = pino({ level: 'silent' });

interface Outbound {
  rawStream: Stream;
}
interface Internals {
  streamsOutbound: Map<string, Outbound>;
  peers: Map<string, PeerId>;
}
const internals = (n: PlexusLibp2p) => n.services.pubsub as unknown as Internals;

const node = () => loopbackNode();

/** Resolves with the next message on TOPIC that `n` receives, or undefined after `ms`. */
function nextMessage(n: PlexusLibp2p, ms: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      n.services.pubsub.removeEventListener('message', on);
      resolve(undefined);
    }, ms);
    const on = (evt: CustomEvent<{ topic: string; data: Uint8Array }>) => {
      if (evt.detail.topic !== TOPIC) return;
      clearTimeout(t);
      n.services.pubsub.removeEventListener('message', on);
      resolve(Buffer.from(evt.detail.data).toString());
    };
    n.services.pubsub.addEventListener('message', on);
  });
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('gossipsub stream repair', () => {
  let a: PlexusLibp2p;
  let b: PlexusLibp2p;
  before(async () => {
    [a, b] = [await node(), await node()];
    a.services.pubsub.subscribe(TOPIC);
    b.services.pubsub.subscribe(TOPIC);
    await a.dial(b.getMultiaddrs()[0]);
    await until(
      () => a.services.pubsub.getSubscribers(TOPIC).some((p) => p.equals(b.peerId)),
      10_000,
      'A to see B subscribed',
    );
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('a healthy table needs nothing', () => {
    assert.deepEqual(repairGossipStreams(a, logger), { reopened: [], forgotten: [] });
  });

  test('a dead outbound stream silences the peer until one pass replaces it', async () => {
    const id = b.peerId.toString();
    const live = internals(a).streamsOutbound.get(id);
    assert.ok(live, 'A has an outbound stream to B');
    // The state the race leaves: gossipsub's own OutboundStream over a stream that has closed,
    // with no close listener left to remove it.
    const conn = a.getConnections(b.peerId)[0];
    const dead = await conn.newStream(live.rawStream.protocol ?? '/meshsub/1.1.0');
    await dead.close();
    const OutboundStream = live.constructor as new (s: Stream, onError: () => void, opts: object) => Outbound;
    internals(a).streamsOutbound.set(id, new OutboundStream(dead, () => {}, {}));
    await live.rawStream.close();

    const lost = nextMessage(b, 1500);
    await a.services.pubsub.publish(TOPIC, Buffer.from('before'));
    assert.equal(await lost, undefined, 'with the dead stream, B hears nothing from A');

    assert.deepEqual(repairGossipStreams(a, logger).reopened, [id]);
    await until(
      () => {
        const s = internals(a).streamsOutbound.get(id)?.rawStream;
        return s !== undefined && s !== dead && s.status === 'open';
      },
      5000,
      'a new outbound stream',
    );
    const heard = nextMessage(b, 5000);
    await a.services.pubsub.publish(TOPIC, Buffer.from('after'));
    assert.equal(await heard, 'after');
  });

  test('a peer listed without a connection is forgotten', async () => {
    await a.hangUp(b.peerId);
    // Put the peer back as the late stream of a closing connection would.
    internals(a).peers.set(b.peerId.toString(), b.peerId);
    assert.deepEqual(repairGossipStreams(a, logger).forgotten, [b.peerId.toString()]);
    assert.equal(internals(a).peers.has(b.peerId.toString()), false);
  });
});
