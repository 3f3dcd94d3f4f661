/** A tiny HTTP GET for tests that talk to apps on loopback. */
import { get } from 'node:http';

/** GETs `http://127.0.0.1:PORT/PATH` with a fresh connection; rejects if nothing answers. */
export function httpText(
  port: number,
  path: string,
  timeoutMs = 2000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer on port ${port} within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
