/**
 * How a host daemon runs, under either supervisor: systemd when it is PID 1 (the package's own
 * unit, with a drop-in when plexus needs another command line), else the agent's own process
 * supervisor (the `process` backend of workloads), as the package's user.
 */

/** A folder the daemon needs before it starts. */
export interface DaemonDir {
  path: string;
  owner: string;
  /** Its group: that of this user (default: the owner's). */
  group?: string;
  mode: number;
  /**
   * Under systemd the package's unit makes it (RuntimeDirectory=), and the agent may not: its
   * own unit keeps /run read-only to it. Made by the agent only when it supervises the daemon.
   */
  unitMakes?: boolean;
}

/** What the runner needs to start one daemon; stored as JSON in `host_daemons`. */
export interface DaemonSpec {
  /** Short name: `caddy`, `redis`, `postgresql`. */
  name: string;
  /** The command line under the agent's supervisor (run as `/bin/sh -c "exec CMD"`). */
  cmd: string;
  /** The Unix user it runs as (the package's). */
  user: string;
  cwd: string;
  env?: Record<string, string>;
  /** Capabilities it keeps as that user (NET_BIND_SERVICE for ports below 1024). */
  capabilities?: string[];
  /** Folders made before every start (under systemd, those its unit does not make). */
  dirs?: DaemonDir[];
  /** The unit systemd runs it as (the package's own). */
  unit: string;
  /** Replaces the unit's ExecStart= in a drop-in (Caddy: plexus's config, not the Caddyfile). */
  execStart?: string;
  /** The package's SysV init script, stopped when the agent supervises the daemon itself. */
  sysv?: string;
}

/** What `status` reports. */
export interface DaemonStatus {
  name: string;
  state: 'running' | 'stopped' | 'failed' | 'crashloop' | 'unknown';
  pid: number | null;
  /** Who supervises it. */
  supervisor: 'systemd' | 'agent';
  restarts: number;
}
