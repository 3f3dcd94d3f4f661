/** Test certificates made with the openssl CLI (Debian's openssl package). */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * A self-signed P-256 certificate (a test CA, or a server's own) in `dir`: `NAME.key` and
 * `NAME.crt`, returned as paths. `san` is an openssl subjectAltName value (`IP:127.0.0.1`).
 */
export function selfSignedCert(
  dir: string,
  name: string,
  o: { cn: string; days?: number; san?: string },
): { key: string; cert: string } {
  const [key, cert] = [join(dir, `${name}.key`), join(dir, `${name}.crt`)];
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-days', String(o.days ?? 1), '-keyout', key, '-out', cert, '-subj', `/CN=${o.cn}`],
      ...(o.san ? ['-addext', `subjectAltName=${o.san}`] : []),
    ],
    { stdio: 'pipe' },
  );
  return { key, cert };
}
