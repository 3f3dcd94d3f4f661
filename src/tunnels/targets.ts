/**
 * Mesh addresses: `service.node` or `node:port`, either with `.plexus` appended. Node and
 * service names are DNS labels, so the forms cannot be confused.
 */
import { MESH_DOMAIN } from './constants.ts';
import { InvalidTargetError } from './errors.ts';
import { isPort, SERVICE_NAME_RE } from './services.ts';

/** Where a tunnel goes: a node and either one of its services or one of its exposed ports. */
export type Target = { node: string; service: string } | { node: string; port: number };

const LABEL = SERVICE_NAME_RE;

/** Strips a trailing `.plexus` (and a final dot), lower-cased. */
function meshName(host: string): string {
  let h = host.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.endsWith(`.${MESH_DOMAIN}`)) h = h.slice(0, -(MESH_DOMAIN.length + 1));
  return h;
}

/** Parses a forward target (`service.node` or `node:port`); throws InvalidTargetError. */
export function parseTarget(text: string): Target {
  if (text.length > 300) throw new InvalidTargetError(text.slice(0, 40), 'too long');
  const colon = text.lastIndexOf(':');
  if (colon >= 0) {
    const node = meshName(text.slice(0, colon));
    const port = Number(text.slice(colon + 1));
    if (!/^\d{1,5}$/.test(text.slice(colon + 1)) || !isPort(port))
      throw new InvalidTargetError(text, 'the port must be 1..65535');
    if (!LABEL.test(node)) throw new InvalidTargetError(text, `'${node}' is not a node name`);
    return { node, port };
  }
  const parts = meshName(text).split('.');
  if (parts.length !== 2 || !LABEL.test(parts[0]) || !LABEL.test(parts[1]))
    throw new InvalidTargetError(text, 'not a mesh address');
  return { service: parts[0], node: parts[1] };
}

/**
 * Resolves a SOCKS5 host name and port to a mesh target: `service.node[.plexus]` (the port is
 * the service's, so the requested one is ignored) or `node[.plexus]` with the requested port.
 * Returns undefined for anything else, which the proxy refuses: it is no open proxy.
 */
export function socksTarget(host: string, port: number): Target | undefined {
  const parts = meshName(host).split('.');
  if (parts.some((p) => !LABEL.test(p))) return undefined;
  if (parts.length === 2) return { service: parts[0], node: parts[1] };
  if (parts.length === 1 && isPort(port)) return { node: parts[0], port };
  return undefined;
}

/** The canonical text of a target (`service.node` or `node:port`). */
export function formatTarget(t: Target): string {
  return 'service' in t ? `${t.service}.${t.node}` : `${t.node}:${t.port}`;
}
