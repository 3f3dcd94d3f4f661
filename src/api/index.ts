/** The API subsystem: actions, control socket, HTTP API, and signed commands (issue 5). */
export { type CommandApi, createCommandApi } from './command-api.ts';
export { CommandService } from './commands.ts';
export * from './constants.ts';
export { type CommandPayload, CommandRefusedError, type Envelope, signCommand } from './envelope.ts';
export { apiMigrations } from './migrations.ts';
