/**
 * The API subsystem: the transports into the agent. The HTTP router (http.ts) with its route
 * modules (routes/, one per resource), and the local control socket (control-socket.ts). What
 * the routes serve (actions, signed commands, webhooks, telemetry) lives in the subsystems; the
 * composition root hands it to the route modules when it mounts them.
 */

export {
  bearerMatches,
  envelopeOfAuthorization,
  PLEXUS_AUTH_SCHEME,
  plexusAuthorization,
} from './authorization.ts';
export {
  type ControlSocket,
  type ControlSocketComponents,
  type ControlSocketInit,
  createControlSocket,
} from './control-socket.ts';
export * from './errors.ts';
export { isAllowedHost } from './host-allowlist.ts';
export {
  type ApiRequest,
  createHttpApi,
  HttpApi,
  type HttpApiComponents,
  type HttpApiInit,
  parseHostPort,
  type RouteHandler,
  type Router,
  STATUS_BY_KIND,
  sendJson,
} from './http.ts';
export type { InProcessRequestInit, InProcessResponse } from './in-process-request.ts';
export { type CommandRoutesDeps, mountCommandRoutes } from './routes/commands.ts';
export { mountHealthRoutes } from './routes/health.ts';
export { type HookRoutesDeps, mountHookRoutes } from './routes/hooks.ts';
export { mountSessionRoutes, type SessionRoutesDeps } from './routes/sessions.ts';
export { mountTelemetryRoutes, type TelemetryRoutesDeps } from './routes/telemetry.ts';
export { findUiAssets, mountUiRoutes } from './routes/ui.ts';
