/** What every verb needs: the data dir, a client for the agent, and the global flags. */
import type { Command } from 'commander';
import { dataPaths, resolveDataDir } from '../config/paths.ts';
import { type AgentClient, socketClient } from './client.ts';
import { UsageError } from './errors.ts';

/** Global flags, available on every verb. */
export interface GlobalOptions {
  dataDir?: string;
  json?: boolean;
}

/** Resolves DATA for a command from `--data-dir` / env / defaults. */
export function dataDirOf(cmd: Command): string {
  return resolveDataDir((cmd.optsWithGlobals() as GlobalOptions).dataDir);
}

/**
 * A client for the command: the local agent's control socket, or signed commands when the verb
 * targets another node (`--node NAME`) or another agent (`--api URL` / PLEXUS_API). Signed
 * commands use `--key FILE` / PLEXUS_KEY, else DATA/keys/admin.key; through an API they check
 * the agents that answer against the network's admin key (network-record.ts). The signing client is
 * imported only when needed, so plain local verbs stay as light as before.
 */
export function agentOf(cmd: Command): AgentClient {
  const o = cmd.optsWithGlobals() as GlobalOptions & { node?: string; key?: string };
  const paths = dataPaths(dataDirOf(cmd));
  const api = process.env.PLEXUS_API || undefined;
  if (api && !/^https?:\/\/[^/\s]+\/?$/.test(api))
    throw new UsageError(`--api/PLEXUS_API must look like http://HOST:PORT (got '${api}')`);
  if (!api && !o.node) return socketClient(paths.socket);
  const init = {
    url: api,
    socketPath: paths.socket,
    keyFile: o.key ?? process.env.PLEXUS_KEY ?? paths.adminKey,
    dataDir: paths.dataDir,
    node: o.node,
  };
  let client: Promise<AgentClient> | undefined;
  return {
    async call(action, args, opts) {
      client ??= import('./remote-client.ts').then((m) => m.remoteClient(init));
      return (await client).call(action, args, opts);
    },
  };
}

/** True when the verb should print JSON. */
export function wantsJson(cmd: Command): boolean {
  return Boolean((cmd.optsWithGlobals() as GlobalOptions).json);
}

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
