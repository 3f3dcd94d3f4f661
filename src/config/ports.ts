/**
 * The TCP ports the agent itself listens on, as its config fixes them: no app may declare one
 * (issue 18: the kernel redirect of an app's declared port would take the agent's own traffic).
 * Ports picked at run time (0, `auto` beside a non-default mesh port) are free for anyone.
 */
import type { Config } from './schema.ts';

/** The mesh's default door port beside the default mesh port 7070 (docs/mesh.md). */
const DEFAULT_PORTS: Record<number, number> = { 7070: 7073 };

/** The fixed TCP ports of the agent's listeners: mesh, join door, API, SOCKS, tunnel data and splices. */
export function agentPorts(config: Config): number[] {
  const ports = new Set<number>();
  const add = (p: number) => {
    if (Number.isInteger(p) && p > 0 && p <= 65535) ports.add(p);
  };
  const tcp = (addr: string) => add(Number(/\/tcp\/(\d+)/.exec(addr)?.[1]));
  const hostPort = (v: string) => add(Number(/:(\d+)$/.exec(v)?.[1]));
  for (const a of config.mesh.listen) {
    tcp(a);
    const p = Number(/\/tcp\/(\d+)/.exec(a)?.[1]);
    if (config.mesh.door === 'auto' && DEFAULT_PORTS[p]) add(DEFAULT_PORTS[p]);
  }
  if (Array.isArray(config.mesh.door)) for (const a of config.mesh.door) tcp(a);
  for (const v of [config.api.listen, config.socks.listen, config.tunnels.dataListen]) hostPort(v);
  if (config.tunnels.dataListen !== 'off' && config.tunnels.splicePort !== 'auto')
    add(config.tunnels.splicePort);
  return [...ports].sort((a, b) => a - b);
}
