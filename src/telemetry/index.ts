/** The telemetry subsystem: host and app collectors, history, Prometheus metrics and panel push. */
export { historyArgs, telemetryActions } from './actions.ts';
export { type AppSnapshot, type AppSource, noWorkloads, ProcessSampler } from './app-source.ts';
export * from './constants.ts';
export * from './errors.ts';
export { type HistoryPoint, type HistoryResult, TelemetryHistory } from './history.ts';
export { createMetricsRegistry, type MetricsRegistry, type MetricsSource } from './metrics.ts';
export { type PanelBeat, PanelPusher, type PanelStats } from './panel.ts';
export { type NodeView, type ServiceEntry, TelemetryService } from './service.ts';
export { type HostSample, SystemCollector } from './system-collector.ts';
