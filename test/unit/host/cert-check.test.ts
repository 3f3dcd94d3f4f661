/**
 * What the certificate check reports, against local TLS servers: a certificate from the trusted
 * root is `ok`, an untrusted one or none is `pending` for a new domain and `error` (with the
 * reason) for an old one. Certificates are made with the openssl CLI.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:tls';
import { checkCertificate } from '../../../src/host/cert-check.ts';
import { selfSignedCert } from '../../helpers/certs.ts';
import { freePort } from '../../helpers/cluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-cert-'));
const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
const long = Date.now() - 3_600_000;

async function serve(key: string, cert: string): Promise<Server> {
  const s = createServer({ key: readFileSync(join(dir, key)), cert: readFileSync(join(dir, cert)) }, (c) =>
    c.end(),
  );
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return s;
}

describe('checkCertificate', () => {
  let good: Server;
  let selfSigned: Server;
  before(async () => {
    const subj = (cn: string) => ['-subj', `/CN=${cn}`];
    writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=DNS:a.test\n');
    selfSignedCert(dir, 'ca', { cn: 'Test Root', days: 2 });
    ssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'leaf.key',
      '-out',
      'leaf.csr',
      ...subj('a.test'),
    );
    ssl(
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '30',
      '-out',
      'leaf.crt',
      '-extfile',
      'san.cnf',
    );
    good = await serve('leaf.key', 'leaf.crt');
    selfSigned = await serve('ca.key', 'ca.crt');
  });
  after(() => {
    good?.close();
    selfSigned?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a certificate from the trusted root is ok, with its expiry and issuer', async () => {
    const f = await checkCertificate(
      'a.test',
      (good.address() as AddressInfo).port,
      long,
      join(dir, 'ca.crt'),
    );
    assert.equal(f.cert, 'ok', f.error ?? '');
    assert.equal(f.issuer, 'Test Root');
    assert.ok(f.expires! > Date.now() + 29 * 86_400_000);
  });

  it('an untrusted certificate is an error for an old domain, pending for a new one', async () => {
    const port = (good.address() as AddressInfo).port;
    const old = await checkCertificate('a.test', port, long);
    assert.equal(old.cert, 'error');
    assert.match(old.error!, /not valid/);
    assert.equal((await checkCertificate('a.test', port, Date.now())).cert, 'pending');
    const self = await checkCertificate(
      'a.test',
      (selfSigned.address() as AddressInfo).port,
      long,
      join(dir, 'ca.crt'),
    );
    assert.equal(self.cert, 'error', 'a certificate for another name');
  });

  it('no TLS at all is an error with the reason', async () => {
    const f = await checkCertificate('a.test', await freePort(), long);
    assert.equal(f.cert, 'error');
    assert.match(f.error!, /TLS handshake failed: .*ECONNREFUSED/);
    assert.ok(f.error!.length <= 200);
  });
});
