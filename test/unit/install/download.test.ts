/** `upgrade --url` downloads (src/install/download.ts): truncated and oversized ones are refused, nothing kept. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { downloadRelease } from '../../../src/install/download.ts';

const dir = mkdtempSync(join(tmpdir(), 'plexus-download-'));
const server = createServer((req, res) => {
  if (req.url === '/whole') {
    res.writeHead(200, { 'content-length': '1000' });
    res.end(Buffer.alloc(1000, 1));
  } else if (req.url === '/truncated') {
    // Announces 1000 bytes, sends 500, then the connection drops.
    res.writeHead(200, { 'content-length': '1000' });
    res.write(Buffer.alloc(500, 1), () => res.socket?.destroy());
  } else if (req.url === '/huge') {
    res.writeHead(200, { 'content-length': String(2 ** 40) });
    res.end();
  } else res.writeHead(404).end();
});
let base = '';
before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});
const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: { code?: string }) => e.code,
  );

describe('release downloads', () => {
  it('a whole download is written', async () => {
    assert.equal(await codeOf(downloadRelease(`${base}/whole`, join(dir, 'w'), 4096)), 'accepted');
    assert.equal(readFileSync(join(dir, 'w')).length, 1000);
  });
  it('a truncated one is refused and removed', async () => {
    assert.equal(await codeOf(downloadRelease(`${base}/truncated`, join(dir, 't'), 4096)), 'DOWNLOAD_FAILED');
    assert.equal(existsSync(join(dir, 't')), false);
  });
  it('one larger than a release may be is refused before it is read, and a 404 too', async () => {
    assert.equal(await codeOf(downloadRelease(`${base}/huge`, join(dir, 'h'), 4096)), 'RELEASE_TOO_LARGE');
    assert.equal(await codeOf(downloadRelease(`${base}/nothing`, join(dir, 'n'), 4096)), 'DOWNLOAD_FAILED');
  });
});
