/**
 * The composition root: the one place that wires subsystems together (docs/architecture.md).
 *
 * It reads the config and keys, opens the logger and the store, then builds every subsystem with
 * its factory, `createX(init, components)`, which does no I/O (src/core/lifecycle.ts). Only
 * when all are built does it start them, in the order below, and it stops them in reverse: a
 * subsystem may rely on everything started before it for as long as it runs. Peers (tunnels,
 * workloads, telemetry, commands) never import each other; the callbacks that join them are
 * written here.
 */
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  createControlSocket,
  createHttpApi,
  findUiAssets,
  mountCommandRoutes,
  mountHealthRoutes,
  mountHookRoutes,
  mountSessionRoutes,
  mountTelemetryRoutes,
  mountUiRoutes,
} from './api/index.ts';
import { commandMigrations, createCommands } from './commands/index.ts';
import { agentPorts, type Config, type DataPaths, dataPaths, loadConfig } from './config/index.ts';
import { ActionRegistry } from './core/actions.ts';
import { startInOrder } from './core/lifecycle.ts';
import { VERSION } from './core/version.ts';
import {
  createHost,
  edgeActions,
  edgeForTelemetry,
  hostMigrations,
  interfaceAddresses,
  serviceActions,
  systemResolver,
} from './host/index.ts';
import { fleetUpgradeActions, fleetUpgradeInit } from './install/index.ts';
import { createLogger, type Logger } from './logging/index.ts';
import { createMesh, loadNodeKeys, type Mesh, meshMigrations, type NodeKeys } from './mesh/index.ts';
import { createShell, shellMigrations } from './shell/index.ts';
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

/** Builds and starts every subsystem. On failure, stops what had started and rethrows. */
export async function startDaemon(init: DaemonInit): Promise<Daemon> {
  const paths = dataPaths(init.dataDir);
  const config = loadConfig(paths.config);
  const keys = loadNodeKeys(paths);
  const root = createLogger({
    level: config.log.level,
    file: paths.agentLog,
    stdout: init.stdoutLogs !== false,
  });
  const logger = root.logger.child({ node: config.node.name });
  let db: Db | undefined;
  try {
    // Every subsystem's tables, in one SQLite file; each subsystem owns its migrations.
    db = openStore(paths.db, [
      ...meshMigrations,
      ...commandMigrations,
      ...tunnelMigrations,
      ...workloadsMigrations,
      ...shellMigrations,
      ...hostMigrations,
    ]);
    const parts = buildAgent({ paths, config, keys, db, logger });
    const stopAll = await startInOrder(parts, (name, err) =>
      logger.warn({ err, part: name }, 'error during shutdown'),
    );
    writeFileSync(paths.pidFile, `${process.pid}\n`, { mode: 0o600 });
    logger.info({ version: VERSION, dataDir: paths.dataDir }, 'agent started');
    const opened = db;
    return {
      config,
      logger,
      mesh: parts.mesh,
      async stop() {
        logger.info('agent stopping');
        await stopAll();
        opened.close();
        await root.close();
      },
    };
  } catch (err) {
    db?.close();
    await root.close();
    throw err;
  }
}

/** What every subsystem is built from. */
interface AgentBase {
  paths: DataPaths;
  config: Config;
  keys: NodeKeys;
  db: Db;
  logger: Logger;
}

/**
 * Builds every subsystem, without I/O, and returns them in start order. The order is the
 * dependency order: the mesh first (everything else speaks over it); workloads after tunnels, so
 * that apps start once the node is reachable (stopping the agent leaves apps running: the next
 * start adopts them); commands once every action is registered; the control socket and HTTP API
 * last, so that nothing reaches a subsystem that is not running yet.
 */
function buildAgent({ paths, config, keys, db, logger }: AgentBase) {
  const log = (module: string) => logger.child({ module });
  const actions = new ActionRegistry({ logger: log('actions') });

  // The metrics registry comes before the mesh: libp2p reports into it from its creation. The
  // telemetry service attaches its own figures to it when it starts.
  const metrics = createMetricsRegistry();
  const mesh = createMesh(
    { keys, paths, config, version: VERSION, libp2pMetrics: metrics.libp2pMetrics },
    { db, logger: log('mesh') },
  );
  actions.register(...mesh.actions);

  const tunnels = createTunnels(
    {
      socksListen: config.socks.listen,
      dataListen: dataListenOf(config.tunnels.dataListen, config.mesh.listen, config.tunnels.splicePort),
    },
    { mesh, db, logger: log('tunnels') },
  );
  actions.register(...tunnels.actions);

  const workloads = createWorkloads(
    {
      appsDir: paths.apps,
      backend: config.workloads.backend,
      drainTimeoutMs: config.workloads.drainS * 1000,
      redirect: { off: config.workloads.redirect === 'off' },
      reservedPorts: agentPorts(config),
      lowPorts: config.workloads.lowPorts,
    },
    { db, logger: log('workloads'), masterKey: loadMasterKey(paths.masterKey) },
  );
  actions.register(...workloadsActions(workloads, { agentLog: paths.agentLog }));
  // An app with a `port` is exposed in the mesh under its own name.
  tunnels.services.addProvider('app', () => workloads.ports());

  // The Caddy edge and host services (issue 18, docs/edge.md). Until deploys report live ports,
  // an app's upstream is the port of its run spec. The edge is a TrafficSwitch for deploys.
  const host = createHost(
    { dataDir: paths.dataDir },
    {
      db,
      logger: log('host'),
      upstreams: { upstreamOf: (app) => workloads.apps.get(app)?.spec.port },
      appExists: (app) => workloads.apps.get(app) !== undefined,
      setAppEnv: (app, vars) => workloads.setEnv(app, vars),
    },
  );
  actions.register(...serviceActions(host.services));
  actions.register(
    ...edgeActions(host.edge, {
      appExists: (app) => workloads.apps.get(app) !== undefined,
      upstreamOf: (app) => workloads.apps.get(app)?.spec.port,
      tenantOfApp: (app) => workloads.apps.get(app)?.tenant,
      resolve: systemResolver,
      // A node behind a NAT with port forwarding is reached at the address members see it from.
      localAddresses: () => [
        ...interfaceAddresses(),
        ...mesh.status().reachability.observed.map((a) => a.split('/')[2] ?? ''),
      ],
    }),
  );
  workloads.on('change', (c) => {
    if (c.kind === 'remove') void host.edge.forget(c.app).catch(() => {});
    else if (c.kind === 'deploy' || c.kind === 'rollback') void host.edge.ensureApplied().catch(() => {});
  });

  const telemetry = createTelemetry(
    { version: VERSION, panel: config.panel },
    {
      mesh,
      logger: log('telemetry'),
      apps: {
        list: () => workloads.list(),
        onChange: (listener) => {
          workloads.on('change', listener);
          return () => workloads.off('change', listener);
        },
      },
      services: () => tunnels.services.list().map(({ name, port }) => ({ name, port })),
      edge: () => edgeForTelemetry(host.edge),
      metrics,
    },
  );
  actions.register(...telemetryActions(telemetry));
  // Releases sent over the mesh (issue 15, docs/install.md): verified here, installed by an upgrader outside the agent.
  actions.register(...fleetUpgradeActions(fleetUpgradeInit(paths, VERSION)));

  // Interactive sessions (issue 16) reach this node as signed commands, like exec.
  const shell = createShell(
    {
      dataDir: paths.dataDir,
      user: config.shell.user,
      idleTimeoutS: config.shell.idleTimeout,
      maxSessions: config.shell.maxSessions,
      record: config.shell.record,
      recordKeep: config.shell.recordKeep,
      recordMaxBytes: config.shell.recordMaxBytes,
    },
    { db, logger: log('shell') },
  );
  actions.register(...shell.actions);
  tunnels.services.addInProcess((name) => shell.transferTarget(name));

  const commands = createCommands({}, { mesh, db, actions, keys, logger: log('commands') });
  actions.register(...commands.actions);
  // A refused claim to a name or a token use is a security event for the admin to see in
  // `plexus audit`, beside the log line and the `plexus peers` warning the mesh gives it.
  mesh.membership.on('conflict', (c) => {
    commands.audit.record({
      id: null,
      kid: null,
      action: 'mesh.admission',
      target: c.peerId,
      verdict: 'refused',
      code: c.code,
      detail: `${c.name} (token ${c.tokenId}): ${c.message}`,
      via: 'mesh',
    });
  });

  const control = createControlSocket(
    { path: paths.socket },
    { commands: commands.service, actions, logger: log('control') },
  );
  const http =
    config.api.listen === 'off'
      ? undefined
      : createHttpApi(
          { listen: config.api.listen, maxBodyBytes: config.api.maxBodyBytes, hosts: config.api.hosts },
          { logger: log('http') },
        );
  if (http) {
    mountHealthRoutes(http, { version: VERSION, startedAt: Date.now() });
    mountCommandRoutes(http, { commands: commands.service, self: commands.self });
    mountSessionRoutes(http, { commands: commands.service });
    mountHookRoutes(http, { workloads });
    mountTelemetryRoutes(http, {
      commands: commands.service,
      metrics: () => metrics.render(),
      metricsToken: config.api.metricsToken,
    });
    // The dashboard's static files (docs/ui.md), from the installation this agent started from.
    const root = resolve(dirname(process.argv[1] ?? '.'), '..', '..');
    mountUiRoutes(http, { assetsDir: () => findUiAssets(root) });
  }
  return { mesh, tunnels, workloads, host, telemetry, shell, commands, control, http };
}
