/** Where an agent keeps its state. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Resolves DATA: `--data-dir`, then `PLEXUS_DATA_DIR`, then `/var/lib/plexus` as root, or
 * `~/.local/share/plexus` otherwise (docs/architecture.md, Data layout).
 */
export function resolveDataDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return resolve(flag);
  if (env.PLEXUS_DATA_DIR) return resolve(env.PLEXUS_DATA_DIR);
  if (process.getuid?.() === 0) return '/var/lib/plexus';
  return join(homedir(), '.local', 'share', 'plexus');
}

/** Every well-known path under DATA, in one place. */
export function dataPaths(dataDir: string) {
  const keys = join(dataDir, 'keys');
  return {
    dataDir,
    // A release install keeps it in /etc/plexus (its unit sets PLEXUS_CONFIG; docs/install.md).
    config: process.env.PLEXUS_CONFIG ? resolve(process.env.PLEXUS_CONFIG) : join(dataDir, 'config.yaml'),
    db: join(dataDir, 'plexus.db'),
    socket: join(dataDir, 'plexus.sock'),
    pidFile: join(dataDir, 'agent.pid'),
    logs: join(dataDir, 'logs'),
    agentLog: join(dataDir, 'logs', 'agent.log'),
    apps: join(dataDir, 'apps'),
    keys,
    nodeKey: join(keys, 'node.key'),
    swarmKey: join(keys, 'swarm.key'),
    /** The admin's record of the swarm key, and a rotated key not yet in use (mesh/swarm-store.ts). */
    swarmRotation: join(keys, 'swarm-rotation.json'),
    masterKey: join(keys, 'master.key'),
    network: join(keys, 'network.json'),
    adminKey: join(keys, 'admin.key'),
  };
}

/** The paths object returned by `dataPaths`. */
export type DataPaths = ReturnType<typeof dataPaths>;
