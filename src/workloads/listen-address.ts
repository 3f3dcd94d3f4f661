/**
 * Where a process listens, read from /proc/net/tcp and tcp6, and a free private port for a new
 * release. The local port handover binds the app's declared port on the same addresses as the
 * release binds its private one: an app that listens on loopback only stays loopback only, and
 * one that listens on every interface stays reachable on every interface.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Largest /proc/net/tcp file read (a busy server lists every connection; listeners come first). */
const MAX_PROC_NET_BYTES = 8 * 1024 * 1024;

/** The addresses something listens on at TCP `port`: `0.0.0.0`, `::`, `127.0.0.1`, `::1`… */
export function listenAddresses(port: number, files = ['/proc/net/tcp', '/proc/net/tcp6']): string[] {
  const out = new Set<string>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1').slice(0, MAX_PROC_NET_BYTES);
    } catch {
      continue; // no IPv6 on this host
    }
    for (const addr of parseListeners(text, port)) out.add(addr);
  }
  return [...out];
}

/** The local addresses of the LISTEN (state 0A) lines for `port` in a /proc/net/tcp{,6} text. */
export function parseListeners(text: string, port: number): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== '0A') continue;
    const [hexAddr, hexPort] = f[1].split(':');
    if (Number.parseInt(hexPort, 16) !== port) continue;
    const addr = decodeAddress(hexAddr);
    if (addr) out.push(addr);
  }
  return out;
}

/** /proc/net's address: 32-bit words in host (little-endian) order, 1 word for IPv4, 4 for IPv6. */
function decodeAddress(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]+$/.test(hex)) return undefined;
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(Number.parseInt(word.slice(b, b + 2), 16));
  }
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.length !== 16) return undefined;
  // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 one.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255)
    return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return compressIpv6(groups);
}

function compressIpv6(groups: string[]): string {
  // The longest run of zero groups becomes '::' (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Where to reach a listener on `addr`: the loopback of its family for a wildcard address. */
export function connectHost(addr: string): string {
  if (addr === '0.0.0.0') return '127.0.0.1';
  if (addr === '::') return '::1';
  return addr;
}

/**
 * A TCP port free on every interface right now, for a new release's private port. The kernel
 * picks it from the ephemeral range; the release binds it a moment later (another process
 * taking it meanwhile makes the release fail its health check, and the old one keeps serving).
 */
export function freePrivatePort(host = '::'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      // A host without IPv6: the IPv4 wildcard is every interface there is.
      if (host === '::' && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL'))
        freePrivatePort('0.0.0.0').then(resolve, reject);
      else reject(err);
    });
    server.listen({ port: 0, host, ipv6Only: false, exclusive: true }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
