/**
 * What certificate the edge serves for a domain, seen as a client sees it: a TLS handshake to
 * the local edge with the domain as SNI, verified against the public CAs (ACME) or Caddy's own
 * root (internal issuer). This catches every way issuance or renewal can fail (DNS not pointing
 * here, a CA refusing, rate limits, a port not reachable) without parsing Caddy's logs.
 */
import { readFileSync } from 'node:fs';
import { CERT_ERROR_MAX_CHARS, CERT_PENDING_MS, CERT_WARN_DAYS } from './constants.ts';
import type { CertStatus } from './edge-repo.ts';

/** What one check found. */
export interface CertFinding {
  cert: CertStatus;
  expires: number | null;
  issuer: string | null;
  error: string | null;
}

/**
 * Checks `host` on 127.0.0.1:`port`. `caFile` is the internal CA's root, when that issues;
 * `privateRoots` (PEM) are trusted beside the public CAs (an operator's own ACME CA). A domain
 * younger than CERT_PENDING_MS without a valid certificate is `pending`, not an error.
 */
export function checkCertificate(
  host: string,
  port: number,
  addedAt: number,
  caFile?: string,
  privateRoots?: string,
): Promise<CertFinding> {
  let ca: Buffer | undefined;
  try {
    ca = caFile ? readFileSync(caFile) : undefined;
  } catch {
    ca = undefined; // the internal CA makes its root with the first certificate
  }
  // node:tls on first use: an agent without an edge never loads it (test/unit/runtime/bundle.test.ts).
  const tls = process.getBuiltinModule('node:tls');
  const trusted = ca ?? (privateRoots ? [...tls.rootCertificates, privateRoots] : undefined);
  const young = Date.now() - addedAt < CERT_PENDING_MS;
  const problem = (error: string): CertFinding => ({
    cert: young ? 'pending' : 'error',
    expires: null,
    issuer: null,
    error: error.slice(0, CERT_ERROR_MAX_CHARS),
  });
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: host,
      rejectUnauthorized: false,
      ...(trusted ? { ca: trusted } : {}),
    });
    socket.setTimeout(5_000, () => {
      socket.destroy();
      resolve(problem('TLS handshake timed out'));
    });
    socket.once('error', (err) => resolve(problem(`TLS handshake failed: ${err.message}`)));
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      socket.destroy();
      if (!peer?.valid_to) return resolve(problem('no certificate served'));
      const expires = Date.parse(peer.valid_to);
      const issuer = (Array.isArray(peer.issuer?.CN) ? peer.issuer.CN[0] : peer.issuer?.CN) ?? null;
      if (!socket.authorized) {
        const why = String(socket.authorizationError ?? 'not trusted');
        return resolve({ ...problem(`certificate not valid: ${why}`), expires, issuer });
      }
      // Caddy renews with a third of a certificate's life left: warn once half of that has gone
      // by unrenewed (internal certificates live 12 h, public ones 90 days), or within a week.
      const left = expires - Date.now();
      const lifetime = expires - Date.parse(peer.valid_from);
      const late = left < Math.min(CERT_WARN_DAYS * 86_400_000, lifetime / 6);
      resolve({
        cert: late ? 'expiring' : 'ok',
        expires,
        issuer,
        error: late ? `expires in ${Math.max(0, Math.floor(left / 60_000))} min and was not renewed` : null,
      });
    });
  });
}
