/**
 * Wires the command subsystem (issue 5) over a started mesh: the audit log and seen ids, the
 * command service, the `/plexus/cmd/1.0.0` handler, its actions, and `POST /v1/commands`.
 */

import type { HttpApi } from '../api/http.ts';
import { mountCommandRoutes } from '../api/routes/commands.ts';
import type { ActionRegistry } from '../core/actions.ts';
import type { Logger } from '../logging/index.ts';
import type { Mesh, NodeKeys } from '../mesh/index.ts';
import type { Db } from '../store/index.ts';
import { AuditLog, SeenIds } from './audit.ts';
import { COMMAND_PROTOCOL } from './constants.ts';
import { execAction } from './exec.ts';
import { operatorActions } from './operator-actions.ts';
import { meshRelay, serveCommands } from './relay-protocol.ts';
import { CommandService } from './service.ts';

/** What the command subsystem needs. */
export interface CommandApiComponents {
  mesh: Mesh;
  db: Db;
  actions: ActionRegistry;
  keys: NodeKeys;
  logger: Logger;
}

/** A started command subsystem. */
export interface CommandApi {
  service: CommandService;
  audit: AuditLog;
  /** Mounts `POST /v1/commands`. */
  mount(http: HttpApi): void;
  stop(): Promise<void>;
}

/** Creates the command service, registers its actions and serves the mesh protocol. */
export async function createCommandApi(c: CommandApiComponents): Promise<CommandApi> {
  const audit = new AuditLog(c.db);
  const seen = new SeenIds(c.db);
  seen.prune();
  const service = new CommandService({
    actions: c.actions,
    lookupKey: (kid) => c.mesh.membership.operators.lookup(kid),
    audit,
    seen,
    self: { peerId: c.mesh.peerId, signer: c.keys.identity.signer },
    isMember: (peerId) => c.mesh.membership.isMember(peerId),
    relay: meshRelay(c.mesh),
    logger: c.logger,
  });
  c.actions.register(execAction(), ...operatorActions(c.mesh, c.keys.admin, audit));
  await serveCommands(c.mesh, service, c.logger);
  return {
    service,
    audit,
    mount: (http) => mountCommandRoutes(http, service, () => ({ name: c.mesh.name, peerId: c.mesh.peerId })),
    async stop() {
      await c.mesh.libp2p.unhandle(COMMAND_PROTOCOL).catch(() => {});
    },
  };
}
