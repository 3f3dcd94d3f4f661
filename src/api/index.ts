/** The API subsystem: actions, control socket, HTTP API, and signed commands (issue 5). */

export * from '../commands/constants.ts';
export {
  type CommandPayload,
  CommandRefusedError,
  type Envelope,
  signCommand,
} from '../commands/envelope.ts';
export { type CommandApi, createCommandApi } from '../commands/index.ts';
export { apiMigrations } from '../commands/migrations.ts';
export { CommandService } from '../commands/service.ts';
