/** Real libp2p nodes built as the agent builds them (src/mesh/node.ts), on loopback, for integration tests. */
import { randomBytes } from 'node:crypto';
import type { ConnectionGater } from '@libp2p/interface';
import { generateNodeIdentity } from '../../src/mesh/keys.ts';
import { createNode, type PlexusLibp2p } from '../../src/mesh/node.ts';
import { SwarmKeySwitch } from '../../src/mesh/swarm-key.ts';

/** One swarm key for every node of a test run. */
const swarmKey = new SwarmKeySwitch(randomBytes(32), 0);

/**
 * Creates and starts a node on 127.0.0.1 (any port), with `gater` (default: lets everyone in)
 * and `nodeKey` (default: a fresh one).
 */
export async function loopbackNode(
  gater: ConnectionGater = {},
  nodeKey = generateNodeIdentity().protobuf,
): Promise<PlexusLibp2p> {
  const n = await createNode({
    nodeKey,
    protector: swarmKey.protector(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    relayServer: false,
    reservations: 0,
    gater,
    agentVersion: 'test',
  });
  await n.start();
  return n;
}
