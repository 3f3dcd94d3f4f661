/**
 * Why Caddy could not get a certificate, from its own log (issue 18). A TLS handshake tells that
 * no valid certificate is served, not why; Caddy logs each failed issuance as a JSON line of its
 * `tls.obtain` logger (Caddy 2.6):
 *
 *   {"level":"error","logger":"tls.obtain","msg":"could not get certificate from issuer",
 *    "identifier":"shop.example.com","error":"HTTP 400 urn:ietf:params:acme:error:rejectedIdentifier - …"}
 *
 * and a success as `certificate obtained successfully`. The reason kept for a host is the last
 * failure not followed by a success. Lines may carry the supervisor's time stamp in front.
 */
import { parseStampedLine } from '../core/log-stamp.ts';

/** One line of Caddy's JSON log, as far as it matters here. */
interface CaddyLine {
  level?: string;
  logger?: string;
  msg?: string;
  identifier?: string;
  error?: string;
}

/** The last issuance failure of each host whose certificate Caddy has not obtained since. */
export function issuanceFailures(lines: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of lines) {
    const { text } = parseStampedLine(raw);
    if (!text.startsWith('{') || !text.includes('tls.obtain')) continue;
    let l: CaddyLine;
    try {
      l = JSON.parse(text) as CaddyLine;
    } catch {
      continue; // a line cut by rotation, or not Caddy's
    }
    if (l.logger !== 'tls.obtain' || typeof l.identifier !== 'string') continue;
    const host = l.identifier.toLowerCase();
    if (l.msg === 'certificate obtained successfully') out.delete(host);
    else if (l.level === 'error' && typeof l.error === 'string') out.set(host, l.error);
  }
  return out;
}
