/** What every verb needs: the data dir, a client for the agent, and the global flags. */
import type { Command } from 'commander';
import { dataPaths, resolveDataDir } from '../config/paths.ts';
import { type AgentClient, socketClient } from './client.ts';

/** Global flags, available on every verb. */
export interface GlobalOptions {
  dataDir?: string;
  json?: boolean;
}

/** Resolves DATA for a command from `--data-dir` / env / defaults. */
export function dataDirOf(cmd: Command): string {
  return resolveDataDir((cmd.optsWithGlobals() as GlobalOptions).dataDir);
}

/** A client for the local agent of the command's data dir. */
export function agentOf(cmd: Command): AgentClient {
  return socketClient(dataPaths(dataDirOf(cmd)).socket);
}

/** True when the verb should print JSON. */
export function wantsJson(cmd: Command): boolean {
  return Boolean((cmd.optsWithGlobals() as GlobalOptions).json);
}

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
