/**
 * The DNS rebinding guard (issue 12). A web page on `evil.example` whose DNS name the attacker
 * re-points at 127.0.0.1 makes the victim's browser call the API with `Host: evil.example`, and
 * the same-origin policy lets the page read the answer. So the router serves a request only when
 * its Host names this API: a loopback name (`localhost`, `*.localhost`, which browsers resolve to
 * loopback themselves), an IP literal (an address cannot be rebound), or a name the operator put
 * in `api.hosts`.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The longest Host header considered: a 253-character DNS name and a port. */
const MAX_HOST_CHARS = 260;
/** A DNS name: dot-separated labels of letters, digits and inner hyphens, each up to 63. */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A name as the allowlist compares it: lower case, without a trailing dot. */
export function normalizeHostName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** True when the Host header `header` (`name`, `name:port`, `ip:port`, `[v6]:port`) may be served. */
export function isAllowedHost(header: string | undefined, names: ReadonlySet<string>): boolean {
  if (!header || header.length > MAX_HOST_CHARS) return false;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(header);
  if (!m) return false;
  if (m[3] !== undefined && Number(m[3]) > 65_535) return false;
  if (m[1] !== undefined) return isIPv6(m[1]);
  const name = normalizeHostName(m[2]);
  if (isIPv4(name)) return true;
  if (!DNS_NAME.test(name)) return false;
  return name === 'localhost' || name.endsWith('.localhost') || names.has(name);
}
