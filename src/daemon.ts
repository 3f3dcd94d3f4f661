/**
 * The composition root: config → store → logger → mesh → workloads → api, started in that
 * order and stopped in reverse. It is the only place that wires subsystems together.
 */
import { writeFileSync } from 'node:fs';
import {
  createControlSocket,
  createHttpApi,
  mountCommandRoutes,
  mountHealthRoutes,
  mountHookRoutes,
  mountTelemetryRoutes,
} from './api/index.ts';
import { commandMigrations, createCommands } from './commands/index.ts';
import { type Config, dataPaths, loadConfig } from './config/index.ts';
import { ActionRegistry } from './core/actions.ts';
import { VERSION } from './core/version.ts';
import { createLogger, type Logger } from './logging/index.ts';
import { loadNodeKeys, Mesh, meshMigrations } from './mesh/index.ts';
import { type Db, openStore } from './store/index.ts';
import { createMetricsRegistry, createTelemetry, telemetryActions } from './telemetry/index.ts';
import { createTunnels, dataListenOf, tunnelMigrations } from './tunnels/index.ts';
import { createWorkloads, loadMasterKey, workloadsActions, workloadsMigrations } from './workloads/index.ts';

/** Options for the daemon. */
export interface DaemonInit {
  dataDir: string;
  /** Write logs to stdout as well as the log file; default true. */
  stdoutLogs?: boolean;
}

/** A running agent. */
export interface Daemon {
  config: Config;
  logger: Logger;
  mesh: Mesh;
  stop(): Promise<void>;
}

/** Builds and starts every subsystem. On failure, tears down what had started and rethrows. */
export async function startDaemon(init: DaemonInit): Promise<Daemon> {
  const startedAt = Date.now();
  const paths = dataPaths(init.dataDir);
  const config = loadConfig(paths.config);
  const keys = loadNodeKeys(paths);
  const root = createLogger({
    level: config.log.level,
    file: paths.agentLog,
    stdout: init.stdoutLogs !== false,
  });
  const logger = root.logger.child({ node: config.node.name });
  const stops: (() => Promise<void> | void)[] = [() => root.close()];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        logger.warn({ err }, 'error during shutdown');
      }
    }
  };
  try {
    // --- store: every subsystem's migrations, in one file -------------------------------------
    const db: Db = openStore(paths.db, [
      ...meshMigrations,
      ...commandMigrations,
      ...tunnelMigrations,
      ...workloadsMigrations,
    ]);
    stops.push(() => {
      db.close();
    });
    const actions = new ActionRegistry({ logger: logger.child({ module: 'actions' }) });
    const http =
      config.api.listen === 'off'
        ? undefined
        : createHttpApi(
            { listen: config.api.listen, maxBodyBytes: config.api.maxBodyBytes },
            { logger: logger.child({ module: 'http' }) },
          );

    // --- mesh ---------------------------------------------------------------------------------
    // The metrics registry comes first: libp2p reports into it from the moment it is created.
    // The telemetry service attaches its figures to it when it starts.
    const metrics = createMetricsRegistry();
    const mesh = new Mesh(
      { keys, config, version: VERSION, libp2pMetrics: metrics.libp2pMetrics },
      { db, logger: logger.child({ module: 'mesh' }) },
    );
    await mesh.start();
    stops.push(() => mesh.stop());
    actions.register(...mesh.actions);

    // --- tunnels: exposed services, /plexus/tcp/1.0.0, forwards, SOCKS5 -----------------------
    const tunnels = createTunnels(
      {
        socksListen: config.socks.listen,
        dataListen: dataListenOf(config.tunnels.dataListen, config.mesh.listen),
      },
      { mesh, db, logger: logger.child({ module: 'tunnels' }) },
    );
    await tunnels.start();
    stops.push(() => tunnels.stop());
    actions.register(...tunnels.actions);

    // --- workloads: apps, releases, supervisor, secrets (issue 3) -----------------------------
    // After the mesh, so apps only start once the node is reachable; stopped before it. Stopping
    // leaves apps running: the next start re-adopts them.
    const workloads = createWorkloads(
      { appsDir: paths.apps, backend: config.workloads.backend },
      { db, logger: logger.child({ module: 'workloads' }), masterKey: loadMasterKey(paths.masterKey) },
    );
    await workloads.start();
    stops.push(() => workloads.stop());
    actions.register(...workloadsActions(workloads, { agentLog: paths.agentLog }));
    // An app with a `port` is exposed in the mesh under its own name.
    tunnels.services.addProvider('app', () => workloads.ports());

    // --- telemetry: host and app figures, history, metrics, panel push ------------------------
    const telemetry = createTelemetry(
      { version: VERSION, panel: config.panel },
      {
        mesh,
        logger: logger.child({ module: 'telemetry' }),
        apps: {
          list: () => workloads.list(),
          onChange: (listener) => {
            workloads.on('change', listener);
            return () => workloads.off('change', listener);
          },
        },
        services: () => tunnels.services.list().map(({ name, port }) => ({ name, port })),
        metrics,
      },
    );
    telemetry.start();
    stops.push(() => telemetry.stop());
    actions.register(...telemetryActions(telemetry));

    // --- commands: operator keys, signed envelopes, /plexus/cmd/1.0.0, audit (issue 5) --------
    const commands = createCommands(
      {},
      { mesh, db, actions, keys, logger: logger.child({ module: 'commands' }) },
    );
    actions.register(...commands.actions);
    await commands.start();
    stops.push(() => commands.stop());

    // --- api: control socket and HTTP ---------------------------------------------------------
    const control = createControlSocket(
      { path: paths.socket },
      {
        commands: commands.service,
        actions,
        logger: logger.child({ module: 'control' }),
      },
    );
    await control.start();
    stops.push(() => control.stop());
    if (http) {
      mountHealthRoutes(http, { version: VERSION, startedAt });
      mountCommandRoutes(http, { commands: commands.service, self: commands.self });
      mountHookRoutes(http, { workloads });
      mountTelemetryRoutes(http, { actions, metrics: () => metrics.render() });
      await http.start();
      stops.push(() => http.stop());
    }

    writeFileSync(paths.pidFile, `${process.pid}\n`, { mode: 0o600 });
    logger.info({ version: VERSION, dataDir: paths.dataDir }, 'agent started');
    return {
      config,
      logger,
      mesh,
      async stop() {
        logger.info('agent stopping');
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
