/**
 * The telemetry subsystem: host and app collectors, history, Prometheus metrics and panel push.
 *
 * The composition root builds the metrics registry first (`createMetricsRegistry()`, before the
 * mesh, so that libp2p reports into it from creation), then, once the mesh exists, the service
 * with `createTelemetry(init, { mesh, logger, apps, services, metrics })`. `start()` attaches the
 * service's figures to the registry and starts publishing; `stop()` detaches them. App figures come
 * through the `AppSource` callbacks the root wires to the workload manager.
 */
import { type TelemetryComponents, type TelemetryInit, TelemetryService } from './service.ts';

export { historyArgs, telemetryActions } from './actions.ts';
export { AppHistory, type AppHistoryResult, type AppSeries } from './app-history.ts';
export { type AppSnapshot, type AppSource, noWorkloads, ProcessSampler } from './app-source.ts';
export * from './constants.ts';
export * from './errors.ts';
export { type HistoryPoint, type HistoryResult, TelemetryHistory } from './history.ts';
export { createMetricsRegistry, type MetricsRegistry, type MetricsSource } from './metrics.ts';
export { type PanelBeat, PanelPusher, type PanelStats } from './panel.ts';
export {
  type NodeView,
  type ServiceEntry,
  type TelemetryComponents,
  type TelemetryInit,
  TelemetryService,
} from './service.ts';
export { type HostSample, SystemCollector } from './system-collector.ts';

/** Builds the telemetry service without I/O; `start()` wires it to the mesh and the metrics. */
export function createTelemetry(init: TelemetryInit, components: TelemetryComponents): TelemetryService {
  return new TelemetryService(init, components);
}
