/**
 * The signed-command subsystem (issue 5): envelopes (envelope.ts), who may run what
 * (authorize.ts), the command service (service.ts), the `/plexus/cmd/1.0.0` relay protocol
 * (relay-protocol.ts), the audit log (audit.ts), and its actions: `node.exec` (exec.ts) and the
 * operator grants (operator-actions.ts). Transports (the HTTP route, the control socket) live in
 * src/api and are handed `commands.service` by the composition root.
 */

import type { ActionDef, ActionRegistry } from '../core/actions.ts';
import type { Logger } from '../logging/index.ts';
import type { Mesh, NodeKeys } from '../mesh/index.ts';
import type { Admission } from '../mesh/records.ts';
import type { Db } from '../store/index.ts';
import { AuditLog, SeenIds } from './audit.ts';
import { COMMAND_PROTOCOL } from './constants.ts';
import { execAction } from './exec.ts';
import { operatorActions } from './operator-actions.ts';
import { meshRelay, serveCommands } from './relay-protocol.ts';
import { CommandService } from './service.ts';

export { type AuditEntry, AuditLog } from './audit.ts';
export * from './constants.ts';
export { type CommandPayload, type Envelope, signCommand } from './envelope.ts';
export * from './errors.ts';
export { commandMigrations } from './migrations.ts';
export { CommandService, type FrameSink, type HandleOptions, type Via } from './service.ts';

/** Options of the command subsystem: none yet (its limits are constants.ts). */
export type CommandsInit = Record<string, never>;

/** What the command subsystem needs. */
export interface CommandsComponents {
  /** Membership (operator keys, members), the libp2p node for the relay protocol, grant gossip. */
  mesh: Mesh;
  /** Holds the audit log and the seen command ids (see migrations.ts). */
  db: Db;
  /** The registry signed commands run actions from (the composition root fills it). */
  actions: ActionRegistry;
  /** The node key signs reply frames; the admin key, when present, signs grants. */
  keys: NodeKeys;
  logger: Logger;
}

/** The command subsystem. */
export interface Commands {
  /** Runs and relays envelopes; the HTTP route and the control socket hand them to it. */
  service: CommandService;
  audit: AuditLog;
  /** `node.exec`, `operator.*`, `audit.list`, `node.resolve`: the composition root registers them. */
  actions: ActionDef[];
  /** This node's name, peer ID, network and admission (for `GET /v1/node`); valid once the mesh has started. */
  self(): { name: string; peerId: string; networkId: string; admission: Admission | null };
  /** Forgets expired command ids and serves `/plexus/cmd/1.0.0`. Needs a started mesh. */
  start(): Promise<void>;
  /** Stops serving `/plexus/cmd/1.0.0` and writes the folded refusal counts. */
  stop(): Promise<void>;
}

/** Builds the command subsystem; no I/O until `start()`. */
export function createCommands(_init: CommandsInit, components: CommandsComponents): Commands {
  const { mesh, db, actions, keys, logger } = components;
  const audit = new AuditLog(db);
  const seen = new SeenIds(db);
  const service = new CommandService({
    actions,
    lookupKey: (kid) => mesh.membership.operators.lookup(kid),
    audit,
    seen,
    // Read on each command: the peer ID is known once the mesh has started.
    self: {
      get peerId() {
        return mesh.peerId;
      },
      signer: keys.identity.signer,
    },
    isMember: (peerId) => mesh.membership.isMember(peerId),
    relay: meshRelay(mesh),
    logger,
  });
  let serving = false;
  return {
    service,
    audit,
    actions: [execAction(), ...operatorActions(mesh, keys.admin, audit)] as ActionDef[],
    self: () => ({
      name: mesh.name,
      peerId: mesh.peerId,
      networkId: mesh.networkId,
      admission: mesh.membership.admissionOf(mesh.peerId) ?? null,
    }),
    async start() {
      seen.prune();
      await serveCommands(mesh, service, logger);
      serving = true;
    },
    async stop() {
      // Folded refusal counts still in memory reach their rows.
      try {
        audit.flush();
      } catch (err) {
        logger.warn({ err }, 'cannot write the last refusal counts to the audit log');
      }
      if (!serving) return;
      serving = false;
      await mesh.libp2p.unhandle(COMMAND_PROTOCOL).catch(() => {});
    },
  };
}
