/**
 * Artifacts can't be swapped in transit (issue 13): a plain-http download needs a sha256, and an
 * https URL that redirects to plain http without one is refused. Servers listen on 127.0.0.1;
 * the TLS one uses a throwaway self-signed certificate made with openssl.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { download } from '../../../src/workloads/download.ts';

const root = mkdtempSync(join(tmpdir(), 'plexus-dl-'));
const BODY = Buffer.from('a bundle, byte for byte');
const SHA = createHash('sha256').update(BODY).digest('hex');
let plain: Server;
let tls: Server | undefined;
let requests = 0;
let noTls: string | undefined;
let dest = 0;
const file = () => join(root, `out-${dest++}`);
const portOf = (s: Server) => (s.address() as AddressInfo).port;

before(async () => {
  plain = createHttpServer((_req, res) => {
    requests++;
    res.end(BODY);
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'].concat(
        [
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(root, 'key.pem'),
          '-out',
          join(root, 'cert.pem'),
        ],
      ),
      { stdio: 'ignore' },
    );
  } catch (err) {
    noTls = `openssl cannot make a test certificate (${(err as Error).message.split('\n')[0]})`;
    return;
  }
  const cert = readFileSync(join(root, 'cert.pem'), 'utf8');
  setDefaultCACertificates([...getCACertificates('default'), cert]);
  tls = createHttpsServer({ key: readFileSync(join(root, 'key.pem')), cert }, (req, res) => {
    if (req.url === '/to-http') {
      res.writeHead(302, { location: `http://127.0.0.1:${portOf(plain)}/bundle.tgz` });
      return res.end();
    }
    res.end(BODY);
  });
  await new Promise<void>((r) => tls!.listen(0, '127.0.0.1', r));
});

after(() => {
  plain.close();
  tls?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('download over plain http', () => {
  it('is refused without a sha256, before any request, with a one-line hint naming --sha256', async () => {
    const before = requests;
    await assert.rejects(download(`http://127.0.0.1:${portOf(plain)}/bundle.tgz`, file()), (err: Error) => {
      assert.equal((err as { code?: string }).code, 'INSECURE_URL');
      assert.match(err.message, /--sha256/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    assert.equal(requests, before, 'nothing was fetched');
  });

  it('works with a sha256, which is checked', async () => {
    const r = await download(`http://127.0.0.1:${portOf(plain)}/bundle.tgz`, file(), { sha256: SHA });
    assert.equal(r.sha256, SHA);
    await assert.rejects(
      download(`http://127.0.0.1:${portOf(plain)}/bundle.tgz`, file(), { sha256: 'f'.repeat(64) }),
      { code: 'CHECKSUM_MISMATCH' },
    );
  });
});

describe('download over https', () => {
  it('works without a sha256', async (t) => {
    if (noTls) return t.skip(noTls);
    const r = await download(`https://127.0.0.1:${portOf(tls!)}/bundle.tgz`, file());
    assert.equal(r.sha256, SHA);
  });

  it('refuses a redirect from https to plain http when no sha256 pins the bytes', async (t) => {
    if (noTls) return t.skip(noTls);
    const before = requests;
    await assert.rejects(download(`https://127.0.0.1:${portOf(tls!)}/to-http`, file()), (err: Error) => {
      assert.equal((err as { code?: string }).code, 'INSECURE_REDIRECT');
      assert.match(err.message, /--sha256/);
      return true;
    });
    assert.equal(requests, before, 'the plain-http URL was never fetched');
  });
});
