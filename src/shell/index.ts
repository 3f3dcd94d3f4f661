/**
 * Interactive sessions on this node (issue 16; docs/shell.md): `shell.open` runs a terminal
 * (node-pty) or a piped command as a user of the node, fed by the operator's signed live input
 * (src/commands/live-input.ts) and answered with signed data frames, like any signed command;
 * the session audit (session-log.ts) and asciicast recordings (recorder.ts). It does not know
 * about the mesh: a session reaches its node as a command relayed by src/commands.
 */
import { join } from 'node:path';
import type { ActionDef } from '../core/actions.ts';
import type { Logger } from '../logging/index.ts';
import type { Db } from '../store/index.ts';
import { shellActions } from './actions.ts';
import {
  DEFAULT_IDLE_TIMEOUT_S,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_RECORD_KEEP,
  DEFAULT_RECORD_MAX_BYTES,
  DEFAULT_SHELL_USER,
} from './constants.ts';
import { fileActions } from './file-actions.ts';
import { SessionLog } from './session-log.ts';
import type { SessionProcess } from './session-process.ts';
import { type ChannelTarget, TransferChannels } from './transfer-channel.ts';

export * from './constants.ts';
export * from './errors.ts';
export { shellMigrations } from './migrations.ts';
export type { SessionEntry } from './session-log.ts';

/** Options of the shell subsystem (config `shell.*`). */
export interface ShellInit {
  /** DATA: recordings go to DATA/recordings, the default user's home under DATA/shell-home. */
  dataDir: string;
  user?: string;
  idleTimeoutS?: number;
  maxSessions?: number;
  record?: boolean;
  recordKeep?: number;
  recordMaxBytes?: number;
}

/** What the shell subsystem needs. */
export interface ShellComponents {
  db: Db;
  logger: Logger;
}

/** The shell subsystem. */
export interface Shell {
  /** `shell.*` and the `fs.*` of `plexus cp`: the composition root registers them. */
  actions: ActionDef[];
  /**
   * The open channel of `plexus cp` named `name`, an in-process tunnel service: the composition
   * root hands this lookup to the tunnels' service directory.
   */
  transferTarget(name: string): ChannelTarget | undefined;
  /** Marks the sessions a previous agent never saw end. */
  start(): Promise<void>;
  /** Hangs up every live session. */
  stop(): Promise<void>;
}

/** Builds the shell subsystem; no I/O until `start()`. */
export function createShell(init: ShellInit, components: ShellComponents): Shell {
  const log = new SessionLog(components.db);
  const live = new Set<SessionProcess>();
  const recordingsDir = join(init.dataDir, 'recordings');
  const policy = { defaultUser: init.user ?? DEFAULT_SHELL_USER, homeBase: join(init.dataDir, 'shell-home') };
  const actions = shellActions({
    log,
    logger: components.logger,
    policy,
    idleTimeoutMs: (init.idleTimeoutS ?? DEFAULT_IDLE_TIMEOUT_S) * 1000,
    maxSessions: init.maxSessions ?? DEFAULT_MAX_SESSIONS,
    record: init.record
      ? {
          dir: recordingsDir,
          keep: init.recordKeep ?? DEFAULT_RECORD_KEEP,
          maxBytes: init.recordMaxBytes ?? DEFAULT_RECORD_MAX_BYTES,
        }
      : undefined,
    recordingsDir,
    live,
  }) as ActionDef[];
  const channels = new TransferChannels(components.logger);
  actions.push(...(fileActions({ policy, channels }) as ActionDef[]));
  return {
    actions,
    transferTarget: (name) => channels.target(name),
    async start() {
      log.closeOrphans();
    },
    async stop() {
      for (const proc of live) proc.kill('SIGHUP');
    },
  };
}
