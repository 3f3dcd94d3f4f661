/**
 * Whether a host name resolves to this node, checked before a domain is added: a certificate
 * authority can only validate a name that points here. The resolver and this node's addresses
 * are injected, so tests decide what a name resolves to without touching DNS.
 */
import { lookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { DnsCheckError } from './errors.ts';

/** Resolves a name to its addresses. */
export type Resolver = (host: string) => Promise<string[]>;

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), all families. */
export const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Addresses of this host's interfaces; the agent adds those peers see (a NAT's public one). */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined)
    .map((a) => a.address);
}

/**
 * Throws a DnsCheckError unless every address `host` resolves to is one of `mine`: a name with
 * one record elsewhere would fail half of the CA's validations.
 */
export async function checkResolvesHere(host: string, resolve: Resolver, mine: string[]): Promise<void> {
  let addrs: string[];
  try {
    addrs = await resolve(host);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'an error';
    throw new DnsCheckError(host, `does not resolve (${code})`);
  }
  if (!addrs.length) throw new DnsCheckError(host, 'does not resolve');
  const own = new Set(mine.map(plain));
  const elsewhere = addrs.filter((a) => !own.has(plain(a)));
  if (elsewhere.length)
    throw new DnsCheckError(host, `resolves to ${elsewhere.slice(0, 3).join(', ')}, which is not this node`);
}

/** An IPv4-mapped IPv6 address as its IPv4 form. */
function plain(a: string): string {
  return a.replace(/^::ffff:/i, '').toLowerCase();
}
